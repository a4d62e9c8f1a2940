"""Run under mpiexec -n 2 by test_distributed_exits.py: rank 1 leaves normally while rank 0 waits
in a collective (an allreduce rank 1 never joins); the job must end, naming rank 1."""

from rnnlab import distributed

with distributed.abort_on_error("exit-case") as w:
    if w.rank == 0:
        w.sum(1.0)  # waits for a partner that has left
