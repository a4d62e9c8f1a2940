"""Greedy translation with onnxruntime alone: the graphs of ``rnnlab translate export``.

    rnnlab translate export --model model/ --out onnx/
    python docs/examples/onnx_translate.py onnx/ "Tom is reading." "I like cats."

Needs numpy, onnxruntime and sacremoses only (not rnnlab; and sentencepiece for a model trained
with ``--vocab bpe|unigram``). It does what ``rnnlab translate run --beam 1`` does: the same
tokens (lower-cased if the model was, punctuation split off, truecased if the model was: each
word in the best form of ``info["truecase"]``; then subword pieces), sentences
decoded in batches of 256 sorted by length, at most max(max_len, longest source) + 5 units each
(3 max_len for subwords; or max_output_len), and the output detokenised by sacremoses with the
target language's rules after a truecased model's first word is capitalised (``--tokenized``
prints the tokens instead).
"""

import base64
import json
import os
import re
import sys
import unicodedata

import numpy as np
import onnxruntime as ort
from sacremoses import MosesDetokenizer, MosesDetruecaser

CHUNK = 256


def tokens(text, info):
    if info["lower"]:
        text = text.lower()
    text = unicodedata.normalize("NFC", text.replace("\u202f", " ").replace("\xa0", " "))
    toks = re.sub(info["punct_regex"], r" \1 ", text).split()
    if info.get("best_src"):  # truecased: each word's best form
        toks = [info["best_src"].get(t.lower(), t) for t in toks]
    return toks[: info["max_input_len"] or 2 * info["max_len"]]


def translate(folder, sentences, tokenized=False):
    with open(os.path.join(folder, "translator.json"), encoding="utf-8") as f:
        info = json.load(f)
    if info.get("truecase"):  # a best form's lower-case is its key
        info["best_src"] = {w.lower(): w for w in info["truecase"]["src"]}
    opts = ort.SessionOptions()
    encoder = ort.InferenceSession(
        os.path.join(folder, "encoder.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    step = ort.InferenceSession(
        os.path.join(folder, "decoder_step.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    encode, decode = codec(info)
    moses = MosesDetokenizer(lang=info.get("target_lang") or "en")
    sp = info["special"]
    toks = [encode(tokens(s, info)) if tokens(s, info) else [] for s in sentences]
    out = [""] * len(sentences)
    order = sorted((i for i, t in enumerate(toks) if t), key=lambda i: len(toks[i]))
    for a in range(0, len(order), CHUNK):
        chunk = order[a : a + CHUNK]
        lengths = np.array([len(toks[i]) for i in chunk], np.int64)
        src = np.full((len(chunk), lengths.max()), sp["pad"], np.int64)
        for n, i in enumerate(chunk):
            src[n, : lengths[n]] = toks[i]
        enc = dict(
            zip([o.name for o in encoder.get_outputs()], encoder.run(None, {"src": src, "lengths": lengths}))
        )
        state = {"h": enc["h0"], "keys": enc["keys"], "mask": enc["mask"]}
        if "c0" in enc:
            state["c"] = enc["c0"]
        if "pk" in enc:
            state["pk"] = enc["pk"]
        if info["input_feed"]:
            state["feed"] = np.zeros((len(chunk), enc["h0"].shape[2]), np.float32)
        per_word = 3 if "subword" in info else 1
        cap = info["max_output_len"] or max(per_word * info["max_len"], int(lengths.max())) + 5
        alive, words = np.arange(len(chunk)), [[] for _ in chunk]
        tok = np.full(len(chunk), sp["sos"], np.int64)
        names = [o.name for o in step.get_outputs()]
        for _ in range(cap):
            res = dict(zip(names, step.run(None, {"tokens": tok, **state})))
            tok = res["logp"].argmax(axis=1)  # greedy: y_t = argmax log p
            state["h"] = res["h_new"]
            if "c" in state:
                state["c"] = res["c_new"]
            if "feed" in state:
                state["feed"] = res["feed_new"]
            keep = tok != sp["eos"]
            for j in np.flatnonzero(keep):
                words[alive[j]].append(int(tok[j]))
            if not keep.any():
                break
            alive, tok = alive[keep], tok[keep]  # drop the finished rows
            for k in state:
                state[k] = state[k][:, keep] if k in ("h", "c") else state[k][keep]
        for n, i in enumerate(chunk):
            text = decode([t for t in words[n] if t not in (sp["pad"], sp["sos"])])
            if info.get("truecase", {}).get("capitalize"):  # a sentence's first word capitalised
                text = MosesDetruecaser().detruecase(text, return_str=True)
            out[i] = text if tokenized else moses.detokenize(text.split())
    return out


def codec(info):
    """tokens -> source ids, and output ids -> text: by the word lists, or the subword models."""
    if "subword" in info:
        import sentencepiece

        src, tgt = (
            sentencepiece.SentencePieceProcessor(model_proto=base64.b64decode(info["subword"][k]))
            for k in ("src", "tgt")
        )
        return (lambda toks: src.encode(" ".join(toks))), (lambda ids: " ".join(tgt.decode(ids).split()))
    stoi = {w: i for i, w in enumerate(info["src_vocab"])}
    unk = info["special"]["unk"]
    return (lambda toks: [stoi.get(w, unk) for w in toks]), (
        lambda ids: " ".join(info["tgt_vocab"][t] for t in ids)
    )


if __name__ == "__main__":
    args = [a for a in sys.argv[2:] if a != "--tokenized"]
    for line in translate(sys.argv[1], args, tokenized="--tokenized" in sys.argv[2:]):
        print(line)
