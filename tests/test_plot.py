"""`genaannot plot`: the region figure is drawn from real tracks, calls and gene models."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from test_hub import make_scan

from genaannot.cli import main
from genaannot.plot import Track, figure_bytes, pr_figure, region_figure, track_identity


@pytest.fixture(scope="module")
def scan_dir(tmp_path_factory):
    return make_scan(tmp_path_factory.mktemp("plot"))


def test_track_identity():
    assert track_identity("out.acceptor.plus.bw") == ("acceptor", "+")
    assert track_identity("out.donor_2.minus.bw") == ("donor_2", "-")
    assert track_identity("ism.max_abs.bw") == ("ism.max_abs", ".")
    assert track_identity("run.minus.bw") == ("run", "-")


def test_region_figure_panels():
    v = np.linspace(0, 1, 100)
    fig = region_figure(chrom="c", start=1000, end=1100,
                        tracks=[Track("a", "+", v), Track("a", "-", v[::-1]), Track("ism", ".", v - 0.5)])
    assert len(fig.axes) == 2
    lo, hi = fig.axes[0].get_ylim()
    assert lo < 0 < hi  # minus strand mirrored below zero
    with pytest.raises(ValueError, match="values for"):
        region_figure(chrom="c", start=0, end=10, tracks=[Track("a", "+", v)])


def test_figure_bytes():
    def fig():
        return pr_figure(task="splice", curves={"model donor": (np.array([1.0, 0.5]), np.array([0.0, 1.0]))},
                         metrics={"donor": {"average_precision": 0.75}})

    png = figure_bytes(fig(), dpi=50)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert figure_bytes(fig(), fmt="", dpi=50) == png  # no suffix: PNG
    assert len(figure_bytes(fig(), dpi=100)) > len(png)
    svg = figure_bytes(fig(), fmt=".SVG")  # an output's suffix as it is
    assert b"<svg" in svg[:1000]
    with pytest.raises(ValueError, match="(?i)format"):
        figure_bytes(fig(), fmt="docx")


def test_plot_cli(scan_dir, tmp_path):
    import matplotlib.image as mpimg

    gff = tmp_path / "genes.gff3"
    gff.write_text(
        "##gff-version 3\n"
        "chr1\ttest\tgene\t201\t1500\t.\t+\t.\tID=g1\n"
        "chr1\ttest\tmRNA\t201\t1500\t.\t+\t.\tID=t1;Parent=g1\n"
        "chr1\ttest\texon\t201\t400\t.\t+\t.\tParent=t1\n"
        "chr1\ttest\texon\t801\t1000\t.\t+\t.\tParent=t1\n"
        "chr1\ttest\texon\t1301\t1500\t.\t+\t.\tParent=t1\n"
        "chr1\ttest\tgene\t1601\t2300\t.\t-\t.\tID=g2\n"
        "chr1\ttest\tmRNA\t1601\t2300\t.\t-\t.\tID=t2;Parent=g2\n"
        "chr1\ttest\texon\t1601\t1800\t.\t-\t.\tParent=t2\n"
        "chr1\ttest\texon\t2101\t2300\t.\t-\t.\tParent=t2\n"
    )
    bws = sorted(str(p) for p in scan_dir.glob("splice.*.bw"))
    out = tmp_path / "region.png"
    genome = scan_dir.parent / "genome.fa"
    r = CliRunner().invoke(main, ["plot", str(genome), "--region", "chr1:101-2400", "--tracks", *bws,
                                  "--annotation", str(gff), "--calls", str(scan_dir / "splice.calls.bed"),
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    img = mpimg.imread(out)
    assert img.shape[0] > 600 and img.shape[1] > 1200
    assert img[..., :3].std() > 0.05  # not a blank canvas
    r = CliRunner().invoke(main, ["plot", str(genome), "--region", "chr9:1-10", "--tracks", bws[0], "-o", str(out)])
    assert r.exit_code != 0 and "not in the genome" in r.output
