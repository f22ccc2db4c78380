"""Tests for genaannot.pipeline.browser: plot_region, write_scan_hub, write_scan_report (the
library side of ``genaannot plot``, ``hub`` and ``report``) on a real tiny-model scan."""

from __future__ import annotations

import gzip

import pytest
from test_hub import make_scan

from genaannot.io.atomic import OutputError
from genaannot.pipeline.browser import plot_region, write_scan_hub, write_scan_report
from genaannot.regions import RegionError


@pytest.fixture(scope="module")
def scan_dir(tmp_path_factory):
    return make_scan(tmp_path_factory.mktemp("browser"))


def test_plot_region_draws_tracks_calls_and_genes(scan_dir, tmp_path, monkeypatch):
    genome = scan_dir.parent / "genome.fa"
    gff = tmp_path / "g.gff3.gz"
    with gzip.open(gff, "wt") as fh:  # chromosome named "1": matched to the FASTA's "chr1"
        fh.write("##gff-version 3\n1\t.\tgene\t201\t900\t.\t+\t.\tID=g1\n"
                 "1\t.\tmRNA\t201\t900\t.\t+\t.\tID=t1;Parent=g1\n"
                 "1\t.\texon\t201\t400\t.\t+\t.\tParent=t1\n1\t.\texon\t601\t900\t.\t+\t.\tParent=t1\n")
    bws = sorted(scan_dir.glob("splice.*.bw"))
    out = plot_region(genome, region="chr1:101-2400", output=tmp_path / "sub" / "r.png", tracks=bws,
                      calls=scan_dir / "splice.calls.bed", annotation=gff, title="t")
    assert out == tmp_path / "sub" / "r.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = plot_region(genome, region="chr1:101-2400", output=tmp_path / "r.svg", annotation=gff)
    assert b"<svg" in svg.read_bytes()[:500]
    import genaannot.plot

    seen = {}
    real = genaannot.plot.region_figure

    def spy(**kw):
        seen.update(kw)
        return real(**kw)

    monkeypatch.setattr(genaannot.plot, "region_figure", spy)
    plot_region(genome, region="chr1:101-2400", output=tmp_path / "r2.png", annotation=gff)
    assert [t.id for t in seen["transcripts"]] == ["t1"] and (seen["start"], seen["end"]) == (100, 2400)
    assert not list(tmp_path.glob(".r.*"))  # no temporary left


def test_plot_region_errors_name_what_to_fix(scan_dir, tmp_path):
    genome = scan_dir.parent / "genome.fa"
    with pytest.raises(ValueError, match="at least one of"):
        plot_region(genome, region="chr1:1-10", output=tmp_path / "x.png")
    with pytest.raises(RegionError, match="chr9"):
        plot_region(genome, region="chr9:1-10", output=tmp_path / "x.png", calls=scan_dir / "splice.calls.bed")
    assert not (tmp_path / "x.png").exists()
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError):
        plot_region(genome, region="chr1:1-10", output=tmp_path / "f" / "x.png", calls=scan_dir / "splice.calls.bed")


def test_hub_and_report_of_a_scan(scan_dir, tmp_path):
    res = write_scan_hub(scan_dir, outdir=tmp_path / "hub", hub_name="h1", genome_name="toy")
    hub = res.hub_txt.read_text()
    assert "hub h1" in hub and res.trackdb.parent.name == "toy" and res.session is not None
    assert res.calls_left_out == (res.calls_bigbed is None)
    assert "track " in res.trackdb.read_text()
    no_session = write_scan_hub(scan_dir, outdir=tmp_path / "hub2", session=False)
    assert no_session.session is None and "genaannot_splice" in no_session.hub_txt.read_text()
    rep = write_scan_report(scan_dir, output=tmp_path / "r.html", top=3, embed_limit_mb=0)
    assert rep.path == tmp_path / "r.html" and not rep.embedded and rep.linked
    assert "igv" in rep.path.read_text().lower()
