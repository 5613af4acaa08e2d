"""Draw the Newton–Schulz scalar maps and a model's per-module gradient spectra as one PNG.

    python -m vla.optim.plot_filters --out docs/img/pion_filters.png

Left: F(σ) for Muon's 5 × quintic and Pion with k_p = 0…5 (σ after Frobenius normalisation).
Right: normalised singular values of every matrix gradient of a model, sorted, against the Pion
cut-offs. Without `--model-config`, the model is a tiny random-init transformers Qwen2 fed random
tokens, so the command runs offline in seconds; pass a transformers config JSON to use another shape.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from vla.optim.low_rank import filter_cutoff
from vla.optim.newton_schulz import muon_schedule, pion_schedule, scalar_filter
from vla.optim.spectral import normalised, singular_values


def _tiny_qwen2(config_path: str | None):
    import transformers

    if config_path:
        config = transformers.AutoConfig.from_pretrained(config_path)
    else:
        config = transformers.Qwen2Config(
            hidden_size=128,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=352,
            num_hidden_layers=2,
            vocab_size=512,
        )
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config)


def model_gradient_spectra(model, batch: int = 4, seq: int = 64) -> dict[str, torch.Tensor]:
    """Normalised singular values of each ≥2-D gradient after one LM loss backward on random tokens."""
    vocab = model.config.vocab_size
    tokens = torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(0))
    model(input_ids=tokens, labels=tokens).loss.backward()
    return {
        name: normalised(singular_values(p.grad))
        for name, p in model.named_parameters()
        if p.grad is not None and p.ndim >= 2 and "embed" not in name and "lm_head" not in name
    }


def draw(out: Path, spectra: dict[str, torch.Tensor]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_f, ax_s) = plt.subplots(1, 2, figsize=(13, 5))
    sigma = torch.logspace(-3, 0, 600, dtype=torch.float64)
    ax_f.plot(sigma, scalar_filter(sigma, muon_schedule()), color="black", lw=2, label="Muon (5 × quintic)")
    colors = plt.cm.viridis(torch.linspace(0, 0.9, 6).tolist())
    for k_p in range(6):
        ax_f.plot(sigma, scalar_filter(sigma, pion_schedule(k_p)), color=colors[k_p], label=f"Pion k_p={k_p}")
    ax_f.set(
        xscale="log", xlabel="σ / ‖M‖_F", ylabel="F(σ)", title="Composed Newton–Schulz filters (5 steps)"
    )
    ax_f.grid(alpha=0.3)
    ax_f.legend(fontsize=8)

    for name, s in spectra.items():
        ax_s.plot(torch.arange(1, len(s) + 1), s, lw=0.8, alpha=0.7, label=name.replace("model.layers.", "L"))
    for k_p in range(3):
        cut = filter_cutoff(pion_schedule(k_p), 0.5)
        ax_s.axhline(cut, color=colors[k_p], ls="--", lw=1)
        ax_s.text(30, cut * 1.08, f"k_p={k_p} cut-off {cut:.2f}", fontsize=7, color=colors[k_p])
    ax_s.set(
        xscale="log",
        yscale="log",
        xlabel="index i",
        ylabel="σᵢ / ‖G‖_F",
        title="Per-module gradient spectra (tiny random Qwen2, one batch)",
    )
    ax_s.grid(alpha=0.3)
    if len(spectra) <= 16:
        ax_s.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img/pion_filters.png"))
    parser.add_argument(
        "--model-config", default=None, help="transformers config (dir or JSON); default: tiny Qwen2"
    )
    args = parser.parse_args(argv)
    draw(args.out, model_gradient_spectra(_tiny_qwen2(args.model_config)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
