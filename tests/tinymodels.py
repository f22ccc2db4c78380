"""Tiny real checkpoints built at test time (no reference data needed).

- :func:`make_tokenizer` trains a small BPE ``tokenizer.json`` (GENA special-token ids:
  [UNK]=0 [CLS]=1 [SEP]=2 [PAD]=3 [MASK]=4) on a few random sequences;
- :func:`make_gena_dir` writes a GENA BERT checkpoint directory through the package's own
  ``build_network`` + ``save_pretrained``, with weights redrawn at a larger scale than the
  BERT init so that outputs really depend on the input.

Both are deterministic for a given ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["SPECIALS", "make_tokenizer", "make_gena_dir", "random_dna", "randomize_"]

SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]


def random_dna(n: int, *, seed: int = 0, alphabet: str = "ACGT") -> str:
    rng = np.random.default_rng(seed)
    return "".join(rng.choice(list(alphabet), size=n))


def make_tokenizer(directory: str | Path, *, vocab_size: int = 96, seed: int = 0) -> Path:
    """Train a tiny BPE tokenizer and save ``tokenizer.json`` (+ HF side files) in ``directory``.

    Returns the path of ``tokenizer.json``.
    """
    from tokenizers import Tokenizer, models, trainers

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=list("ACGTNRYKMSWB"),
        show_progress=False,
    )
    corpus = [random_dna(200, seed=seed + i) for i in range(20)]
    tok.train_from_iterator(corpus, trainer=trainer)
    from genaannot.io.tokenizers import read_bpe_tokenizer, write_tokenizer_files

    path = directory / "tokenizer.json"
    tok.save(str(path))
    write_tokenizer_files(directory, read_bpe_tokenizer(path))  # adds special_tokens_map.json / tokenizer_config.json
    return path


def randomize_(network, *, seed: int = 0) -> None:
    """Redraw every parameter (normal, std 1/sqrt(fan-in) for matrices, 0.1 for vectors,
    LayerNorm weights around 1) so that biases and LayerNorms matter."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in network.named_parameters():
            if p.ndim >= 2:
                std = 0.5 if "embeddings" in name else p.shape[1] ** -0.5
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif "LayerNorm" in name or name.endswith("_ln.weight") or "_ln." in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def make_gena_dir(
    directory: str | Path,
    *,
    head: str = "token",
    num_labels: int = 3,
    hidden: int = 16,
    layers: int = 2,
    heads: int = 2,
    max_positions: int = 130,
    seed: int = 0,
    pre_layer_norm: bool = True,
    last_layer_norm: bool | None = None,
    problem_type: str | None = None,
    metadata: dict | None = None,
) -> Path:
    """Write a tiny random GENA BERT checkpoint directory and return its path."""
    import torch

    from genaannot.io.tokenizers import read_bpe_tokenizer
    from genaannot.models.gena_bert import GenaBertConfig, build_network, save_pretrained

    directory = Path(directory)
    tok_dir = directory.parent / f".{directory.name}-tokenizer"
    tokenizer = read_bpe_tokenizer(make_tokenizer(tok_dir, seed=seed))
    config = GenaBertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=max_positions,
        pre_layer_norm=pre_layer_norm,
        last_layer_norm=last_layer_norm,
        id2label={i: f"LABEL_{i}" for i in range(num_labels)} if head != "mlm" else {},
        problem_type=problem_type,
        pad_token_id=3,
    )
    torch.manual_seed(seed)
    net = build_network(config, head=head)
    randomize_(net, seed=seed)
    save_pretrained(net, directory, tokenizer=tokenizer, config=config, metadata=metadata)
    return directory


# --------------------------------------------------------------------------- parity helpers

ATOL = RTOL = 1e-4


def parity_fixture(shared: Path) -> tuple[Path, dict[str, np.ndarray], dict[str, str]]:
    """``(directory, expected arrays, {case: sequence})`` of the gena_parity fixture set."""
    import json

    root = Path(shared) / "fixtures" / "gena_parity"
    expected = np.load(root / "expected.npz")
    cases = {c["name"]: c["sequence"] for c in json.loads((root / "cases.json").read_text())}
    assert len(cases) == 7, sorted(cases)  # the tests loop over them: an empty list would check nothing
    return root, expected, cases


def assert_close(got, exp, what: str = "") -> None:
    """``|got - exp| <= ATOL + RTOL * |exp|`` elementwise, same shape."""
    got = np.asarray(got, dtype=np.float64)
    exp = np.asarray(exp, dtype=np.float64)
    assert got.shape == exp.shape, f"{what}: shape {got.shape} != {exp.shape}"
    err = np.abs(got - exp)
    bad = err > ATOL + RTOL * np.abs(exp)
    assert not bad.any(), f"{what}: {bad.sum()} values off, max |diff| {err.max():.3g}"


def make_rmt_dir(
    directory: str | Path,
    *,
    head: str = "token",
    num_labels: int = 3,
    num_mem_tokens: int = 3,
    input_size: int = 32,
    segment_size: int | None = None,
    max_n_segments: int = 3,
    write_rmt_json: bool = True,
    seed: int = 0,
) -> Path:
    """Write a tiny RMT trainer checkpoint directory (``model_best.pth`` + ``config.json`` +
    ``rmt.json`` + tokenizer) laid out like upstream's, and return its path."""
    import json

    import torch

    from genaannot.io.tokenizers import read_bpe_tokenizer
    from genaannot.models.gena_bert import GenaBertConfig, build_network

    directory = Path(directory)
    tokenizer = read_bpe_tokenizer(make_tokenizer(directory, seed=seed))
    vocab = tokenizer.vocab_size
    config = GenaBertConfig(
        vocab_size=vocab + num_mem_tokens,
        hidden_size=8,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
        pre_layer_norm=True,
        id2label={i: f"LABEL_{i}" for i in range(num_labels)},
    )
    net = build_network(config, head=head)
    randomize_(net, seed=seed)
    state = {"model." + k: v for k, v in net.state_dict().items()}
    state["model.embeddings.weight"] = state["model.bert.embeddings.word_embeddings.weight"]
    state["cls_token"] = torch.tensor([tokenizer.cls_id])
    state["sep_token"] = torch.tensor([tokenizer.sep_id])
    state["mem_token_ids"] = torch.arange(vocab, vocab + num_mem_tokens)
    torch.save({"model_state_dict": state, "iteration": 1, "epoch": 0}, directory / "model_best.pth")
    backbone_cfg = config.to_dict()
    backbone_cfg["vocab_size"] = vocab  # the config before wrapping, as the trainer keeps it
    backbone_cfg["architectures"] = ["BertForTokenClassification" if head == "token" else "BertForSequenceClassification"]
    (directory / "config.json").write_text(json.dumps(backbone_cfg, indent=1))
    if write_rmt_json:
        rmt = {"num_mem_tokens": num_mem_tokens, "input_size": input_size, "max_n_segments": max_n_segments}
        if segment_size is not None:
            rmt["segment_size"] = segment_size
        (directory / "rmt.json").write_text(json.dumps(rmt))
    return directory


def make_bigbird_dir(directory: str | Path, *, head: str = "token", num_labels: int = 3, seed: int = 0) -> Path:
    """Write a tiny block-sparse BigBird checkpoint (``pytorch_model.bin``) and return its path.

    ``head``: ``token``, ``sequence`` or ``mlm``; 256 positions, blocks of 8.
    """
    import json

    import torch
    from transformers import (
        BigBirdConfig,
        BigBirdForMaskedLM,
        BigBirdForSequenceClassification,
        BigBirdForTokenClassification,
    )

    d = Path(directory)
    make_tokenizer(d, seed=seed)
    cfg = BigBirdConfig(vocab_size=96, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=256, block_size=8, num_random_blocks=1,
                        attention_type="block_sparse", pad_token_id=3, num_labels=num_labels)
    cls = {"token": BigBirdForTokenClassification, "sequence": BigBirdForSequenceClassification,
           "mlm": BigBirdForMaskedLM}[head]
    torch.manual_seed(seed)
    m = cls(cfg)
    randomize_(m, seed=seed)
    m.config.architectures = [type(m).__name__]
    (d / "config.json").write_text(json.dumps(m.config.to_dict()))
    torch.save(m.state_dict(), d / "pytorch_model.bin")
    return d
