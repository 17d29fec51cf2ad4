# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""extensions/awx/execution-environment.yml installs golem.vm from the tarball ``ansible-galaxy collection
build`` writes, whose name carries galaxy.yml's version: the EE definition must name that very file, both
where it copies it into the build context and where the galaxy requirement installs it. The build context
itself is checked with ansible-builder in tests/integration/test_awx.py."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import yaml

REPO = Path(__file__).resolve().parents[2]
EE = REPO / "extensions" / "awx" / "execution-environment.yml"


def built_tarball_name() -> str:
    """The file name `ansible-galaxy collection build` gives the tarball of this tree."""
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    return f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"


def test_the_ee_copies_the_tarball_of_galaxy_yml_version_from_the_repository_root() -> None:
    ee = yaml.safe_load(EE.read_text())
    sources = [PurePosixPath(entry["src"]) for entry in ee.get("additional_build_files", [])
               if str(entry["src"]).endswith(".tar.gz")]
    assert len(sources) == 1, ee.get("additional_build_files")
    assert sources[0].name == built_tarball_name(), (
        f"{EE.relative_to(REPO)} copies {sources[0].name}; galaxy.yml's version builds {built_tarball_name()}")
    # Relative to the EE file (as ansible-builder takes it): the root, where `ansible-galaxy collection build` writes.
    assert not sources[0].is_absolute()
    assert (EE.parent / sources[0]).resolve().parent == REPO


def test_the_ee_installs_golem_vm_from_the_copied_tarball_not_from_galaxy() -> None:
    ee = yaml.safe_load(EE.read_text())
    copied = next(entry for entry in ee["additional_build_files"] if str(entry["src"]).endswith(".tar.gz"))
    collections = ee["dependencies"]["galaxy"]["collections"]
    assert collections == [{"name": f"{copied['dest']}/{built_tarball_name()}", "type": "file"}], (
        f"{EE.relative_to(REPO)} must install {built_tarball_name()} (galaxy.yml's version) from "
        f"_build/{copied['dest']}/, which the build runs ansible-galaxy in as /build: {collections}")
