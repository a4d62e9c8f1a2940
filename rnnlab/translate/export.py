"""ONNX export of a trained ``Translator`` (``rnnlab translate export``), built on the layers'
graphs of ``rnnlab.export.onnx_graph``: its encoder and ONE decoder step, as two graphs, and
the vocabularies as JSON: enough for any runtime to decode (``docs/examples/onnx_translate.py``
is greedy decoding with onnxruntime alone).

``encoder.onnx`` (``Seq2Seq.start``)::

    src (N, S) int64, lengths (N,) int64  ->  keys (N, S, D*H), pk (N, S, P), mask (N, S) bool,
                                              h0 (L, N, H) (, c0)
    x = E_src[src];  e, h = RNN_enc(x, lengths);  d_0 = tanh(W_b [h_fwd; h_bwd] + b_b)
    keys = e;  pk = the attention score's key side (e, e / sqrt(Hk), e / |e|, W_a e, W_k e + b)

``decoder_step.onnx`` (``Seq2Seq.step``)::

    tokens (B,) int64, h (, c), [feed (B, H)], keys, [pk], mask
        ->  logp (B, Vt), h_new (, c_new), [feed_new], [weights (B, S)]
    x = [E_tgt[y]; feed];  d = RNN_dec(x, h);  a = masked softmax(score(d, pk));  c = a keys
    h~ = tanh(W_c [c; d] + b_c);  logp = log softmax(V h~ + b_v)

(``pk`` only with a score, ``feed`` with input feeding, ``weights`` with attention.)
``translator.json``: both vocabularies (ids are list positions; 0 <pad>, 1 <unk>, 2 <sos>,
3 <eos>; a subword model's SentencePiece protobufs under "subword"), the tokenizer's settings
(lower-casing if the model was trained so, the punctuation split, the target language
whose detokenisation rules apply) and the output cap.
"""

from __future__ import annotations

import os

import numpy as np

from rnnlab.export.onnx_graph import Graph, add_layers, save
from rnnlab.io import write_dir, write_json
from rnnlab.translate import corpus
from rnnlab.translate.storage import vocab_meta

FILES = ("encoder.onnx", "decoder_step.onnx", "translator.json")


def _i64(*v):
    return np.array(v, np.int64)


def _key_side(g: Graph, model, keys: str) -> str | None:
    score = model.score
    if score == "none":
        return None
    if score == "dot":
        return g.node("Identity", [keys], ["pk"])
    if score == "scaled_dot":
        scale = np.float32(1.0 / np.sqrt(model.attention.key_size))
        return g.node("Mul", [keys, g.const(scale, "inv_sqrt_hk")], ["pk"])
    if score == "cosine":
        sq = g.node(
            "ReduceSum", [g.node("Mul", [keys, keys], ["kk"]), g.const(_i64(-1), "ax_last")], ["kk_sum"]
        )
        norm = g.node(
            "Sqrt", [g.node("Add", [sq, g.const(np.float32(1e-12), "eps")], ["kk_eps"])], ["k_norm"]
        )
        return g.node("Div", [keys, norm], ["pk"])
    p = model.attention.params
    if score == "general":
        return g.node("MatMul", [keys, g.const(p["weight"].T.copy(), "W_a_T")], ["pk"])
    proj = g.node("MatMul", [keys, g.const(p["weight_key"].T.copy(), "W_k_T")], ["pk_w"])
    return g.node("Add", [proj, g.const(p["bias"], "b_k")], ["pk"])


def build_encoder(model):
    """The ``onnx.ModelProto`` of ``Seq2Seq.start``."""
    from onnx import TensorProto, helper

    g = Graph()
    L, H, D = model.num_layers, model.hidden_size, 2 if model.bidirectional else 1
    src_t = g.node("Transpose", ["src"], ["src_t"], perm=[1, 0])
    x = g.node("Gather", [g.const(model.src_embed.params["weight"], "E_src"), src_t], ["x"], axis=0)
    seq = g.node("Cast", ["lengths"], ["seq_lens"], to=TensorProto.INT32)
    e, finals = add_layers(g, model.encoder, x, "enc_", seq)
    keys = g.node("Transpose", [e], ["keys"], perm=[1, 0, 2])  # (N, S, D*H)
    bridges = [model.bridge] if model.cell == "gru" else [model.bridge, model.bridge_c]
    outs = ["h0", "c0"][: len(bridges)]
    for k, (bridge, parts, name) in enumerate(zip(bridges, finals, outs)):
        f = g.node("Concat", parts, [f"final{k}"], axis=0)  # (L*D, N, H)
        f = g.node("Reshape", [f, g.const(_i64(L, D, -1, H), "shape_ldnh")], [f"final{k}_4"])
        f = g.node("Transpose", [f], [f"final{k}_t"], perm=[0, 2, 1, 3])  # (L, N, D, H)
        joined = g.node("Reshape", [f, g.const(_i64(L, 0, D * H), "shape_join")], [f"joined{k}"])
        W, b = bridge.params["weight"], bridge.params["bias"]
        a = g.node("MatMul", [joined, g.const(W.T.copy(), f"W_b{k}_T")], [f"bridge{k}"])
        a = g.node("Add", [a, g.const(b, f"b_b{k}")], [f"bridge{k}_b"])
        g.node("Tanh", [a], [name])  # d_0 = tanh(W_b [h_fwd; h_bwd] + b_b)
    S = g.node(
        "Gather", [g.node("Shape", ["src"], ["src_shape"]), g.const(np.array(1, np.int64), "one_s")], ["S"]
    )
    pos = g.node(
        "Range",
        [g.const(np.array(0, np.int64), "zero_s"), S, g.const(np.array(1, np.int64), "step_s")],
        ["pos"],
    )
    lens = g.node("Unsqueeze", ["lengths", g.const(_i64(1), "ax1")], ["lens_col"])
    g.node("Less", [g.node("Unsqueeze", [pos, g.const(_i64(0), "ax0")], ["pos_row"]), lens], ["mask"])
    pk = _key_side(g, model, keys)
    f32, DH = TensorProto.FLOAT, D * H
    inputs = [
        helper.make_tensor_value_info("src", TensorProto.INT64, ["N", "S"]),
        helper.make_tensor_value_info("lengths", TensorProto.INT64, ["N"]),
    ]
    outputs = [helper.make_tensor_value_info("keys", f32, ["N", "S", DH])]
    if pk is not None:
        outputs.append(helper.make_tensor_value_info("pk", f32, ["N", "S", None]))
    outputs.append(helper.make_tensor_value_info("mask", TensorProto.BOOL, ["N", "S"]))
    outputs += [helper.make_tensor_value_info(o, f32, [L, "N", H]) for o in outs]
    return g.model("rnnlab-encoder", inputs, outputs)


def _scores(g: Graph, model, d: str, pk: str) -> str:
    """s (B, 1, S) for the query d (B, H)."""
    q = g.node("Unsqueeze", [d, g.const(_i64(1), "ax1")], ["q"])  # (B, 1, H)
    score = model.score
    if score == "cosine":
        sq = g.node("ReduceSum", [g.node("Mul", [q, q], ["qq"]), g.const(_i64(-1), "ax_last")], ["qq_sum"])
        norm = g.node(
            "Sqrt", [g.node("Add", [sq, g.const(np.float32(1e-12), "eps")], ["qq_eps"])], ["q_norm"]
        )
        q = g.node("Div", [q, norm], ["q_hat"])
    if score in ("dot", "scaled_dot", "general", "cosine"):
        return g.node("MatMul", [q, g.node("Transpose", [pk], ["pk_t"], perm=[0, 2, 1])], ["s"])
    p = model.attention.params  # additive: s = v . tanh(W_q q + pk)
    qp = g.node("MatMul", [q, g.const(p["weight_query"].T.copy(), "W_q_T")], ["qp"])  # (B, 1, A)
    E = g.node("Tanh", [g.node("Add", [qp, pk], ["pre"])], ["E"])  # (B, S, A)
    s = g.node("MatMul", [E, g.const(p["v"][:, None].copy(), "v_col")], ["s_col"])  # (B, S, 1)
    return g.node("Transpose", [s], ["s"], perm=[0, 2, 1])


def build_decoder_step(model):
    """The ``onnx.ModelProto`` of ``Seq2Seq.step``."""
    from onnx import TensorProto, helper

    g = Graph()
    L, H, D = model.num_layers, model.hidden_size, 2 if model.bidirectional else 1
    lstm, attend = model.cell == "lstm", model.score != "none"
    states = ["h", "c"] if lstm else ["h"]
    x = g.node("Gather", [g.const(model.tgt_embed.params["weight"], "E_tgt"), "tokens"], ["x"], axis=0)
    if model.input_feed:
        x = g.node("Concat", [x, "feed"], ["x_feed"], axis=1)
    x3 = g.node("Unsqueeze", [x, g.const(_i64(0), "ax0")], ["x3"])  # (1, B, E')
    out, finals = add_layers(g, model.decoder, x3, "dec_", states=states)
    d = g.node("Squeeze", [out, g.const(_i64(0), "ax0")], ["d"])  # (B, H)
    for s, parts in zip(states, finals):
        g.node("Concat", parts, [s + "_new"], axis=0)
    ht = d
    if attend:
        s = _scores(g, model, d, "pk")
        m = g.node("Unsqueeze", ["mask", g.const(_i64(1), "ax1")], ["mask3"])
        s = g.node("Where", [m, s, g.const(np.float32(-np.inf), "minus_inf")], ["s_masked"])
        a = g.node("Softmax", [s], ["a"], axis=-1)  # (B, 1, S)
        ctx = g.node("Squeeze", [g.node("MatMul", [a, "keys"], ["ctx3"]), g.const(_i64(1), "ax1")], ["ctx"])
        cat = g.node("Concat", [ctx, d], ["cat"], axis=1)
        Wc, bc = model.combine.params["weight"], model.combine.params["bias"]
        ht = g.node(
            "Tanh", [g.node("Gemm", [cat, g.const(Wc, "W_c"), g.const(bc, "b_c")], ["a_c"], transB=1)], ["ht"]
        )
        g.node("Squeeze", [a, g.const(_i64(1), "ax1")], ["weights"])
    if model.input_feed:
        g.node("Identity", [ht], ["feed_new"])
    V, bv = model.out.params["weight"], model.out.params["bias"]
    z = g.node("Gemm", [ht, g.const(V, "V"), g.const(bv, "b_v")], ["z"], transB=1)
    g.node("LogSoftmax", [z], ["logp"], axis=-1)
    f32, DH = TensorProto.FLOAT, D * H
    inputs = [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["B"])]
    inputs += [helper.make_tensor_value_info(s, f32, [L, "B", H]) for s in states]
    if model.input_feed:
        inputs.append(helper.make_tensor_value_info("feed", f32, ["B", H]))
    inputs.append(helper.make_tensor_value_info("keys", f32, ["B", "S", DH]))
    if attend:
        inputs.append(helper.make_tensor_value_info("pk", f32, ["B", "S", None]))
    inputs.append(helper.make_tensor_value_info("mask", TensorProto.BOOL, ["B", "S"]))
    outputs = [helper.make_tensor_value_info("logp", f32, ["B", model.tgt_vocab_size])]
    outputs += [helper.make_tensor_value_info(s + "_new", f32, [L, "B", H]) for s in states]
    if model.input_feed:
        outputs.append(helper.make_tensor_value_info("feed_new", f32, ["B", H]))
    if attend:
        outputs.append(helper.make_tensor_value_info("weights", f32, ["B", "S"]))
    return g.model("rnnlab-decoder-step", inputs, outputs)


def export_translator(translator, directory) -> list:
    """Write ``encoder.onnx``, ``decoder_step.onnx`` and ``translator.json`` into ``directory``
    as one unit (``rnnlab.io.write_dir``: a kill leaves the old three or the new three, never
    the encoder of one model beside the decoder of another; other files in it are kept);
    returns their paths."""
    translator._check_fitted()
    model = translator.model_
    encoder, decoder = build_encoder(model), build_decoder_step(model)
    info = {
        "format": "rnnlab-translator-onnx",
        "version": 1,
        **vocab_meta(translator),
        "lower": translator.lower,
        "target_lang": translator.target_lang,
        "punct_regex": corpus.PUNCT.pattern,
        "max_len": translator.max_len,
        "max_output_len": translator.max_output_len,
        "max_input_len": translator.max_input_len,
        "cell": model.cell,
        "input_feed": model.input_feed,
        "attention": model.score,
        "special": {"pad": 0, "unk": 1, "sos": 2, "eos": 3},
    }

    def fill(tmp):
        save(encoder, os.path.join(tmp, FILES[0]))
        save(decoder, os.path.join(tmp, FILES[1]))
        write_json(os.path.join(tmp, FILES[2]), info)

    write_dir(directory, fill, owned=FILES)
    return [os.path.join(directory, f) for f in FILES]
