"""Debian provider logic: patterns, apt sources, signed-index parsing, layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import KernelNotFound
from harness.kernels.debian import newest_match, pattern_regex, split_parts
from harness.kernels.debian_archive import (
    AptSource,
    PackageEntry,
    _entries,
    index_path,
    index_sha256,
    mirror_for,
    read_apt_sources,
)


def _pkg(name: str, version: str, depends: str = "", suite: str = "s") -> PackageEntry:
    return PackageEntry(name, version, f"pool/{name}.deb", "0" * 64, 1, depends, "http://m", suite)


INDEX = [
    _pkg("linux-image-6.12.115+deb12-amd64-unsigned", "6.12.115-1"),
    _pkg("linux-image-6.12.117+deb12-amd64-unsigned", "6.12.117-1~deb12u1"),
    _pkg("linux-image-6.12.117+deb12-cloud-amd64-unsigned", "6.12.117-1~deb12u1"),
    _pkg("linux-image-6.12.117+deb12-rt-amd64-unsigned", "6.12.117-1~deb12u1"),
    _pkg("linux-image-6.1.0-9-amd64-unsigned", "6.1.27-1"),
    _pkg("linux-image-6.1.0-10-amd64-unsigned", "6.1.38-1"),
    _pkg(
        "linux-image-7.3.4+deb13-amd64",
        "7.3.4-1~bpo13+1",
        # as trixie-backports writes it (7.2.12): an alternative first, the parts exact
        "dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, linux-base, "
        "linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), "
        "linux-binary-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), "
        "linux-modules-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)",
    ),
    _pkg("linux-image-7.3.4+deb13-amd64-dbg", "7.3.4-1~bpo13+1"),
]


def test_star_stays_inside_one_dash_part() -> None:
    rx = pattern_regex("linux-image-6.12.*-amd64-unsigned")
    assert rx.match("linux-image-6.12.117+deb12-amd64-unsigned")
    assert not rx.match("linux-image-6.12.117+deb12-cloud-amd64-unsigned")
    assert pattern_regex("linux-image-**-amd64-unsigned").match(
        "linux-image-6.12.117+deb12-cloud-amd64-unsigned"
    )


def test_newest_version_wins_by_debian_ordering() -> None:
    assert newest_match("linux-image-6.1.0-*-amd64-unsigned", INDEX).version == "6.1.38-1"
    assert newest_match("linux-image-6.12.*-amd64-unsigned", INDEX).version == "6.12.117-1~deb12u1"
    assert newest_match("linux-image-7.*-amd64", INDEX).name == "linux-image-7.3.4+deb13-amd64"


def test_no_match_suggests_similar_names() -> None:
    with pytest.raises(KernelNotFound) as info:
        newest_match("linux-image-6.1.*-amd64-unsigned", INDEX)
    assert "no amd64 package in s matches" in str(info.value)
    assert "linux-image-6.1.0-10-amd64-unsigned" in str(info.value)


def test_ambiguous_pattern_lists_the_candidates() -> None:
    with pytest.raises(KernelNotFound, match="matches several packages"):
        newest_match("linux-image-6.12.**-amd64-unsigned", INDEX)


def test_split_layout_follows_exact_dependencies() -> None:
    """Image, modules and linux-base, which holds the config that ``@needs: config=`` reads."""
    assert split_parts(INDEX[6]) == [
        ("linux-base-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1"),
        ("linux-binary-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1"),
        ("linux-modules-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1"),
    ]
    assert split_parts(INDEX[0]) == []


def test_apt_sources_both_formats(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://ftp.example.org/debian/ bookworm main\n"
        "deb-src http://ftp.example.org/debian bookworm main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\nTypes: deb\nURIs: https://deb.nodesource.com/node_20.x\n"
        "Suites: nodistro\n"
    )
    sources = read_apt_sources(tmp_path)
    assert sources == [
        AptSource("http://ftp.example.org/debian", ("bookworm",)),
        AptSource("http://deb.debian.org/debian-security", ("bookworm-security",)),
    ]
    assert mirror_for("bookworm-security", sources) == "http://deb.debian.org/debian-security"
    assert mirror_for("trixie-backports", sources) == "http://ftp.example.org/debian"
    assert mirror_for("trixie-security", sources) == "http://deb.debian.org/debian-security"


def test_release_sha256_lookup() -> None:
    release = (
        "Origin: Debian\nMD5Sum:\n 0123 10 main/binary-amd64/Packages.xz\nSHA256:\n"
        " abcd 99 main/binary-amd64/Packages.gz\n"
        " beef 100 main/binary-amd64/Packages.xz\n"
        " f00d 90 main/binary-arm64/Packages.xz\n"
    )
    assert index_sha256(release, index_path("amd64")) == "beef"
    assert index_sha256(release, index_path("arm64")) == "f00d"


def test_packages_paragraphs() -> None:
    text = (
        "Package: linux-image-x\nVersion: 1.0\nFilename: pool/x.deb\nSize: 5\nSHA256: aa\n"
        "Depends: a (= 1)\n\nPackage: nofile\nVersion: 1\n"
    )
    (entry,) = _entries(text, "http://m", "s")
    assert (entry.name, entry.version, entry.sha256, entry.depends) == (
        "linux-image-x",
        "1.0",
        "aa",
        "a (= 1)",
    )


def test_packages_paragraphs_skip_continuation_lines_and_unread_fields() -> None:
    """A Description's continuation lines (even one that looks like a field) are not fields."""
    text = (
        "Package: linux-image-y\nVersion: 2.0\nDescription: a kernel\n"
        " SHA256: not-this-one\n .\n Filename: nor-this\n"
        "Filename: pool/y.deb\nSize: 7\nSHA256: bb\n\n"
        "Package: linux-source-6.12\nVersion: 6.12.1-1\nFilename: pool/s.deb\nSHA256: cc\n"
    )
    first, second = _entries(text, "http://m", "s")
    assert (first.filename, first.sha256, first.size, first.depends) == ("pool/y.deb", "bb", 7, "")
    assert (second.name, second.size, second.suite) == ("linux-source-6.12", 0, "s")
