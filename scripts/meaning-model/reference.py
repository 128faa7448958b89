"""Reference embeddings for the phrase-by-meaning check (tests/it/meaning.rs).

Tokenises with Hugging Face's `tokenizers` (the library the model's tokenizer.json is written
for) and runs all-MiniLM-L6-v2 in numpy, as sentence-transformers does: BERT, mean pooling over
every token, L2 normalisation, at most 256 tokens. Writes one line per sentence:
sentence<TAB>token ids (space-separated)<TAB>384 floats (space-separated).

usage: reference.py MODEL_DIR SENTENCES_TSV... OUT_TSV
"""

import json
import struct
import sys

import numpy as np
from tokenizers import Tokenizer


def load_weights(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    weights = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] != "F32":
            continue
        start, end = entry["data_offsets"]
        weights[name] = np.frombuffer(data[start:end], dtype="<f4").reshape(entry["shape"]).astype(np.float64)
    return weights


def layer_norm(x, w, b, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def gelu(x):
    from math import erf

    return 0.5 * x * (1.0 + np.vectorize(erf)(x / np.sqrt(2.0)))


def embed(weights, ids):
    w = weights
    n = len(ids)
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    heads, size = 12, 32
    for layer in range(6):
        p = f"encoder.layer.{layer}."

        def dense(name, v):
            return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q = dense("attention.self.query", x).reshape(n, heads, size).transpose(1, 0, 2)
        k = dense("attention.self.key", x).reshape(n, heads, size).transpose(1, 0, 2)
        v = dense("attention.self.value", x).reshape(n, heads, size).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(size)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(1, 0, 2).reshape(n, heads * size)
        x = layer_norm(
            dense("attention.output.dense", context) + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        h = gelu(dense("intermediate.dense", x))
        x = layer_norm(dense("output.dense", h) + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def main():
    model_dir, inputs, out = sys.argv[1], sys.argv[2:-1], sys.argv[-1]
    tokenizer = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tokenizer.no_padding()
    tokenizer.enable_truncation(256)
    weights = load_weights(f"{model_dir}/model.safetensors")
    sentences = []
    for path in inputs:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                sentences.append(line.rstrip("\n").split("\t")[-1])
    with open(out, "w", encoding="utf-8") as f:
        for sentence in sentences:
            ids = tokenizer.encode(sentence).ids
            vector = embed(weights, ids)
            f.write(sentence + "\t" + " ".join(map(str, ids)) + "\t" + " ".join(f"{v:.7f}" for v in vector) + "\n")


if __name__ == "__main__":
    main()
