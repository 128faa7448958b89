#!/usr/bin/env python3
"""Converts a Whisper model in CTranslate2 format (model.bin + vocabulary.txt) to whisper.cpp's
ggml format, optionally quantising its matrices to 8 bits (q8_0).

Standard library only, so the test command needs nothing beyond Python to make the model the
speech engine's tests and demo use. The output is deterministic: the same input gives the same
bytes, so its SHA-256 can be pinned.

    ct2_to_ggml.py MODEL_DIR OUT.bin [--q8]

The layouts, as whisper.cpp reads them (src/whisper.cpp, whisper_model_load):
- "ggml" magic, eleven i32 hyper-parameters, the mel filterbank (n_mel, n_fft, f32 values),
  the vocabulary (count, then length-prefixed bytes), then tensors: n_dims, name length, type,
  dims innermost first, name, data.
- 1-D tensors, conv biases and positional embeddings are f32; conv weights f16; the rest
  (matrices, token embedding) f16 or q8_0.
"""

import math
import re
import struct
import sys
from pathlib import Path

F32, F16, Q8_0 = 0, 1, 8
FTYPE_F16, FTYPE_Q8_0 = 1, 7
QNT_VERSION_FACTOR, QNT_VERSION = 1000, 2
CT2_FLOAT16, CT2_INT16 = 4, 2


def read_ct2(path):
    """Returns ({name: (dims, dtype, bytes)}, {alias: target})."""
    data = Path(path).read_bytes()
    at = 0

    def take(fmt):
        nonlocal at
        value = struct.unpack_from(fmt, data, at)
        at += struct.calcsize(fmt)
        return value[0]

    def string():
        nonlocal at
        n = take("<H")
        value = data[at : at + n - 1].decode()
        at += n
        return value

    version = take("<I")
    if version != 6:
        sys.exit(f"unsupported CTranslate2 model version {version}")
    spec = string()
    if spec != "WhisperSpec":
        sys.exit(f"not a Whisper model: {spec}")
    take("<I")  # revision
    variables = {}
    for _ in range(take("<I")):
        name = string()
        rank = take("<B")
        dims = [take("<I") for _ in range(rank)]
        dtype = take("<B")
        size = take("<I")
        variables[name] = (dims, dtype, data[at : at + size])
        at += size
    aliases = {}
    for _ in range(take("<I")):
        alias = string()
        aliases[alias] = string()
    return variables, aliases


def f16_values(raw):
    return struct.unpack(f"<{len(raw) // 2}e", raw)


def to_f32(raw):
    values = f16_values(raw)
    return struct.pack(f"<{len(values)}f", *values)


def q8_0(raw):
    """ggml's block_q8_0: per 32 values an f16 scale (max |x| / 127) and 32 rounded int8."""
    values = f16_values(raw)
    out = bytearray()
    pack_block = struct.Struct("<e32b").pack
    for start in range(0, len(values), 32):
        block = values[start : start + 32]
        amax = max(abs(v) for v in block)
        scale = amax / 127.0
        inverse = 1.0 / scale if scale else 0.0
        quants = [int(math.copysign(math.floor(abs(v * inverse) + 0.5), v)) for v in block]
        out += pack_block(scale, *quants)
    return bytes(out)


def slaney_mel(hz):
    if hz < 1000.0:
        return hz * 3.0 / 200.0
    return 15.0 + math.log(hz / 1000.0) / (math.log(6.4) / 27.0)


def slaney_hz(mel):
    if mel < 15.0:
        return mel * 200.0 / 3.0
    return 1000.0 * math.exp((math.log(6.4) / 27.0) * (mel - 15.0))


def mel_filters(n_mels, sample_rate=16000, n_fft=400):
    """librosa.filters.mel(sr, n_fft, n_mels): Slaney scale and area normalisation, which is
    what Whisper was trained with."""
    bins = 1 + n_fft // 2
    fft_hz = [i * (sample_rate / 2) / (bins - 1) for i in range(bins)]
    top = slaney_mel(sample_rate / 2)
    edges = [slaney_hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)]
    weights = []
    for m in range(n_mels):
        lower, centre, upper = edges[m], edges[m + 1], edges[m + 2]
        norm = 2.0 / (upper - lower)
        for hz in fft_hz:
            rising = (hz - lower) / (centre - lower)
            falling = (upper - hz) / (upper - centre)
            weights.append(max(0.0, min(rising, falling)) * norm)
    return bins, weights


def byte_decoder():
    """The inverse of GPT-2's bytes_to_unicode: vocabulary.txt spells each byte as a printable
    character."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def layers(variables, stack):
    found = (re.match(stack + r"/layer_(\d+)/", name) for name in variables)
    return 1 + max(int(m.group(1)) for m in found if m)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    quantise = "--q8" in sys.argv
    if len(args) != 2:
        sys.exit(__doc__)
    model_dir, out_path = Path(args[0]), Path(args[1])
    variables, aliases = read_ct2(model_dir / "model.bin")
    for name, (dims, dtype, _) in variables.items():
        if dtype not in (CT2_FLOAT16, CT2_INT16) and dims:
            sys.exit(f"{name}: expected float16 weights, found CTranslate2 type {dtype}")

    def tensor(name):
        return variables[aliases.get(name, name)]

    def scalar(name):
        return struct.unpack("<h", tensor(name)[2])[0]

    n_audio_ctx, n_audio_state = tensor("encoder/position_encodings/encodings")[0]
    n_text_ctx, n_text_state = tensor("decoder/position_encodings/encodings")[0]
    n_vocab = tensor("decoder/embeddings/weight")[0][0]
    n_mels = tensor("encoder/conv1/weight")[0][1]
    n_audio_layer = layers(variables, "encoder")
    n_text_layer = layers(variables, "decoder")
    ftype = FTYPE_Q8_0 + QNT_VERSION * QNT_VERSION_FACTOR if quantise else FTYPE_F16
    matrix_type = Q8_0 if quantise else F16

    out = bytearray()
    out += struct.pack("<I", 0x67676D6C)
    out += struct.pack(
        "<11i",
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        scalar("encoder/num_heads"),
        n_audio_layer,
        n_text_ctx,
        n_text_state,
        scalar("decoder/num_heads"),
        n_text_layer,
        n_mels,
        ftype,
    )
    bins, filters = mel_filters(n_mels)
    out += struct.pack("<ii", n_mels, bins)
    out += struct.pack(f"<{len(filters)}f", *filters)

    # The plain BPE tokens; whisper.cpp names the special ones after them itself.
    decode = byte_decoder()
    words = (model_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    plain = []
    for word in words:
        if word.startswith("<|"):
            break
        plain.append(bytes(decode[c] for c in word))
    out += struct.pack("<i", len(plain))
    for word in plain:
        out += struct.pack("<I", len(word)) + word

    def write(name, dims, kind, raw):
        """dims as numpy would give them (outermost first); raw is f16 from the model."""
        nonlocal out
        if kind == F32:
            payload = to_f32(raw)
        elif kind == Q8_0:
            payload = q8_0(raw)
        else:
            payload = raw
        encoded = name.encode()
        out += struct.pack("<iii", len(dims), len(encoded), kind)
        out += struct.pack(f"<{len(dims)}i", *reversed(dims))
        out += encoded + payload

    def rows(raw, start, count, width):
        return raw[start * width * 2 : (start + count) * width * 2]

    def linear(target, source, kind=None):
        dims, _, raw = tensor(source + "/weight")
        write(target + ".weight", dims, kind if kind is not None else matrix_type, raw)
        bias = variables.get(source + "/bias")
        if bias is not None:
            write(target + ".bias", bias[0], F32, bias[2])

    def norm(target, source):
        write(target + ".weight", tensor(source + "/gamma")[0], F32, tensor(source + "/gamma")[2])
        write(target + ".bias", tensor(source + "/beta")[0], F32, tensor(source + "/beta")[2])

    def fused(prefix, source, parts, state):
        """CTranslate2 fuses q, k and v (or k and v) into one matrix; whisper.cpp keeps them apart
        and has no key bias (CTranslate2's is zeros)."""
        dims, _, weight = tensor(source + "/weight")
        _, _, bias = tensor(source + "/bias")
        for i, part in enumerate(parts):
            write(f"{prefix}.{part}.weight", [state, dims[1]], matrix_type, rows(weight, i * state, state, dims[1]))
            if part != "key":
                write(f"{prefix}.{part}.bias", [state], F32, bias[i * state * 2 : (i + 1) * state * 2])

    dims, _, raw = tensor("encoder/position_encodings/encodings")
    write("encoder.positional_embedding", dims, F32, raw)
    for conv in ("conv1", "conv2"):
        dims, _, raw = tensor(f"encoder/{conv}/weight")
        write(f"encoder.{conv}.weight", dims, F16, raw)
        dims, _, raw = tensor(f"encoder/{conv}/bias")
        write(f"encoder.{conv}.bias", [dims[0], 1], F32, raw)
    for i in range(n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        fused(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"), n_audio_state)
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
    norm("encoder.ln_post", "encoder/layer_norm")

    dims, _, raw = tensor("decoder/position_encodings/encodings")
    write("decoder.positional_embedding", dims, F32, raw)
    linear("decoder.token_embedding", "decoder/embeddings")
    for i in range(n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        fused(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"), n_text_state)
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        fused(f"{dst}.cross_attn", f"{src}/attention/linear_1", ("key", "value"), n_text_state)
        linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
    norm("decoder.ln", "decoder/layer_norm")

    partial = out_path.with_suffix(out_path.suffix + ".partial")
    partial.write_bytes(out)
    partial.replace(out_path)


if __name__ == "__main__":
    main()
