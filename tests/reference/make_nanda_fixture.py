#!/usr/bin/python3
"""Makes nanda_fixture.safetensors: PyTorch's answers for the `nanda` model on a small batch.

The weights follow a closed formula (deterministic_weights below, mirrored in
tests/test_reference.cpp), so the fixture stores only what PyTorch computed: the logits, the loss,
every parameter's gradient, and the losses of the first five AdamW steps. Run with Debian's
python3-torch (CI does not need it; the fixture is committed):

    /usr/bin/python3 tests/reference/make_nanda_fixture.py   # Debian's python, where python3-torch is
"""
import json
import math
import os
import struct

import torch

torch.set_default_dtype(torch.float32)
P, D_VOCAB, N_CTX, D_MODEL, N_HEADS, D_HEAD, D_MLP = 113, 114, 3, 128, 4, 32, 512
BATCH = 64

# Parameter names and shapes in TransformerLens order (tinygrok's named_parameters order).
SHAPES = [
    ("embed.W_E", [D_VOCAB, D_MODEL]),
    ("pos_embed.W_pos", [N_CTX, D_MODEL]),
    ("blocks.0.attn.W_Q", [N_HEADS, D_MODEL, D_HEAD]),
    ("blocks.0.attn.W_K", [N_HEADS, D_MODEL, D_HEAD]),
    ("blocks.0.attn.W_V", [N_HEADS, D_MODEL, D_HEAD]),
    ("blocks.0.attn.W_O", [N_HEADS, D_HEAD, D_MODEL]),
    ("blocks.0.mlp.W_in", [D_MODEL, D_MLP]),
    ("blocks.0.mlp.b_in", [D_MLP]),
    ("blocks.0.mlp.W_out", [D_MLP, D_MODEL]),
    ("blocks.0.mlp.b_out", [D_MODEL]),
    ("unembed.W_U", [D_MODEL, P]),
]


def deterministic_weights(j, shape):
    """Parameter j: amplitude * sin(0.37 k + 0.0123 k^2 + 1.7 j + 0.1) over its flat index k, in
    float64, then rounded to float32. The k^2 term (a chirp) keeps rows from cancelling each other
    the way a pure sinusoid's would. Amplitude sqrt(2/d_model) gives the variance of Nanda's
    N(0, 1/d_model) init; biases get a tenth of it so that their gradients are exercised too."""
    n = math.prod(shape)
    k = torch.arange(n, dtype=torch.float64)
    amplitude = math.sqrt(2.0 / D_MODEL) * (0.1 if len(shape) == 1 else 1.0)
    return (amplitude * torch.sin(0.37 * k + 0.0123 * k * k + 1.7 * j + 0.1)).to(torch.float32).reshape(shape)


def batch():
    """64 pairs spread over the table: pair index i*199 mod p^2 -> tokens [a, b, =]."""
    pairs = [(i * 199) % (P * P) for i in range(BATCH)]
    tokens = torch.tensor([[q // P, q % P, P] for q in pairs], dtype=torch.int64)
    labels = torch.tensor([(q // P + q % P) % P for q in pairs], dtype=torch.int64)
    return tokens, labels


def forward(w, tokens):
    """Nanda's one-layer transformer, written out as TransformerLens computes it."""
    x = w["embed.W_E"][tokens] + w["pos_embed.W_pos"][: tokens.shape[1]]  # [B, T, d]
    q = torch.einsum("btd,hde->bthe", x, w["blocks.0.attn.W_Q"])
    k = torch.einsum("btd,hde->bthe", x, w["blocks.0.attn.W_K"])
    v = torch.einsum("btd,hde->bthe", x, w["blocks.0.attn.W_V"])
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(D_HEAD)
    t = tokens.shape[1]
    causal = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    pattern = torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
    z = torch.einsum("bhqk,bkhe->bqhe", pattern, v)
    x = x + torch.einsum("bqhe,hed->bqd", z, w["blocks.0.attn.W_O"])
    hidden = torch.relu(x @ w["blocks.0.mlp.W_in"] + w["blocks.0.mlp.b_in"])
    x = x + hidden @ w["blocks.0.mlp.W_out"] + w["blocks.0.mlp.b_out"]
    return x[:, -1] @ w["unembed.W_U"]


def write_safetensors(path, tensors, metadata):
    """The safetensors layout by hand (torch 1.13 has no safetensors module)."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    codes = {torch.float32: "F32", torch.int64: "I64", torch.float64: "F64"}
    for name, t in tensors:
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)


def main():
    weights = {name: deterministic_weights(j, shape).requires_grad_()
               for j, (name, shape) in enumerate(SHAPES)}
    tokens, labels = batch()
    logits = forward(weights, tokens)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()

    out = [("tokens", tokens), ("labels", labels), ("logits", logits.detach()),
           ("loss", loss.detach().reshape([]))]
    out += [("grad." + name, weights[name].grad) for name, _ in SHAPES]

    # Five AdamW steps as in the nanda preset, at a constant lr (no warm-up, whose first step
    # would have lr 0): the loss before each step.
    for w in weights.values():
        w.grad = None
    opt = torch.optim.AdamW(list(weights.values()), lr=1e-3, betas=(0.9, 0.98), eps=1e-8,
                            weight_decay=1.0)
    losses = []
    for _ in range(5):
        step_loss = torch.nn.functional.cross_entropy(forward(weights, tokens), labels)
        losses.append(step_loss.item())
        opt.zero_grad()
        step_loss.backward()
        opt.step()
    out.append(("adamw_losses", torch.tensor(losses, dtype=torch.float64)))

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nanda_fixture.safetensors")
    write_safetensors(path, out, {"torch": torch.__version__, "made_by": os.path.basename(__file__)})
    print(f"wrote {path}: loss {loss.item():.6f}, AdamW losses {losses}")


if __name__ == "__main__":
    main()
