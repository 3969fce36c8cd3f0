"""``ffpt patch-lammps``: put ``pair_style ffpt`` and ``ffpt/kk`` into a LAMMPS source tree.

Like pair_nequip_allegro's ``patch_lammps.sh``: the C++ styles are copied into ``src/`` (CPU)
and ``src/KOKKOS/`` (KOKKOS), and a marked block appended to ``cmake/CMakeLists.txt`` links
libtorch into LAMMPS and passes the artifact contract (format tag and version, metadata
record, hash key) as compile definitions of the ffpt sources. The tree's LAMMPS version goes
into the copied ffpt_lammps_compat.h (older LAMMPS neighbour/comm API). Running it again updates the
files and the block in place (files whose content is unchanged keep their time stamps, so an
incremental build recompiles only what changed). Then build LAMMPS with CMake (docs/lammps.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from ffpt.lammps.plugin import SOURCE_DIR

BEGIN = "# >>> ffpt patch-lammps >>>"
END = "# <<< ffpt patch-lammps <<<"
#: plugin-only files (the PLUGIN-package loader), not part of an in-tree build
PLUGIN_ONLY = {"ffpt_plugin.cpp", "lammpsplugin_abi.h"}
#: registration of the CPU style in a LAMMPS tree (the plugin registers it in ffpt_plugin.cpp)
STYLE_WRAP = ("#ifdef PAIR_CLASS\n// clang-format off\nPairStyle(ffpt,PairFFPT);\n"
              "// clang-format on\n#else\n\n{body}\n#endif\n")


def _contract_definitions() -> str:
    """The compile definitions that ``lammps_plugin/CMakeLists.txt`` also passes."""
    import ffpt
    from ffpt.deploy import deploy, trust

    return (f'FFPT_VERSION="{ffpt.__version__}" FFPT_FORMAT_TAG="{deploy.FORMAT_TAG}"\n'
            f"    FFPT_FORMAT_VERSION={deploy.FORMAT_VERSION} "
            f'FFPT_METADATA_RECORD="{trust.METADATA_RECORD}"\n'
            f'    FFPT_HASH_KEY="{trust.HASH_KEY}" FFPT_UNHASHED_RECORD="{trust.UNHASHED[1]}"')


def cmake_block() -> str:
    """The block appended to ``cmake/CMakeLists.txt`` (between the BEGIN/END markers)."""
    import ffpt

    return f"""{BEGIN}
# pair_style ffpt (+ ffpt/kk with PKG_KOKKOS), ffpt {ffpt.__version__}. Written by
# `ffpt patch-lammps`; rerun it to update, delete this block to undo. libtorch:
#   -DCMAKE_PREFIX_PATH=$(python -c 'import torch; print(torch.utils.cmake_prefix_path)')
find_package(Torch REQUIRED)
target_link_libraries(lammps PUBLIC "${{TORCH_LIBRARIES}}")
file(GLOB FFPT_SOURCES ${{LAMMPS_SOURCE_DIR}}/pair_ffpt*.cpp
     ${{LAMMPS_SOURCE_DIR}}/KOKKOS/pair_ffpt*_kokkos.cpp)
set_property(SOURCE ${{FFPT_SOURCES}} APPEND PROPERTY COMPILE_DEFINITIONS
    {_contract_definitions()})
{END}
"""


def _write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` atomically unless ``path`` already holds it; True if written."""
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(path.name + ".ffpt-tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def check_tree(tree: Path) -> Path:
    """``tree`` if it is a LAMMPS source tree (``src/version.h``, ``cmake/CMakeLists.txt``)."""
    version = tree / "src" / "version.h"
    if not (version.is_file() and (tree / "cmake" / "CMakeLists.txt").is_file()
            and "LAMMPS_VERSION" in version.read_text(errors="replace")):
        raise ValueError(f"{tree} is not a LAMMPS source tree (no src/version.h with "
                         "LAMMPS_VERSION and cmake/CMakeLists.txt); pass the folder that holds "
                         "src/ and cmake/")
    return tree


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def lammps_version(tree: Path) -> int:
    """The tree's LAMMPS version as yyyymmdd (``#define LAMMPS_VERSION "29 Sep 2021"``)."""
    text = (tree / "src" / "version.h").read_text(errors="replace")
    m = re.search(r'LAMMPS_VERSION\s+"(\d+)\s+([A-Za-z]{3})\w*\s+(\d{4})"', text)
    if not m or m.group(2) not in MONTHS:
        raise ValueError(f"{tree}/src/version.h: cannot read LAMMPS_VERSION (expected e.g. "
                         '"29 Sep 2021"); is this a LAMMPS release tree?')
    return int(m.group(3)) * 10000 + (MONTHS.index(m.group(2)) + 1) * 100 + int(m.group(1))


def style_files(version: int, source_dir: Path = SOURCE_DIR) -> dict[str, str]:
    """Relative path in the LAMMPS tree -> file text, for every ffpt style file; ``version``
    (yyyymmdd) selects the LAMMPS API in ffpt_lammps_compat.h."""
    files = {}
    for path in sorted(source_dir.glob("*.[ch]*")):
        if path.suffix in (".cpp", ".h") and path.name not in PLUGIN_ONLY:
            text = path.read_text()
            if path.name == "pair_ffpt.h":
                text = STYLE_WRAP.format(body=text.rstrip("\n"))
            elif path.name == "ffpt_lammps_compat.h":
                text = (f"#ifndef FFPT_LAMMPS_VERSION    // this tree's src/version.h (ffpt "
                        f"patch-lammps)\n#define FFPT_LAMMPS_VERSION {version}\n#endif\n{text}")
            files[f"src/{path.name}"] = text
    for path in sorted((source_dir / "kokkos").glob("*")):
        if path.suffix in (".cpp", ".h"):
            files[f"src/KOKKOS/{path.name}"] = path.read_text()
    return files


def patch_lammps(tree: str | Path, source_dir: Path = SOURCE_DIR) -> list[str]:
    """Copy the ffpt styles into ``tree`` and add libtorch to its CMake build (idempotent).

    Returns the paths (relative to ``tree``) that were written.
    """
    root = check_tree(Path(tree).resolve())
    changed = []
    for rel, text in style_files(lammps_version(root), source_dir).items():
        dest = root / rel
        if not dest.parent.is_dir():  # a tree without src/KOKKOS: CPU style only
            continue
        if _write_if_changed(dest, text):
            changed.append(rel)
    cmake = root / "cmake" / "CMakeLists.txt"
    old = cmake.read_text()
    base = re.sub(rf"\n?{re.escape(BEGIN)}.*?{re.escape(END)}\n?", "\n", old, flags=re.S)
    if _write_if_changed(cmake, base.rstrip("\n") + "\n\n" + cmake_block()):
        changed.append("cmake/CMakeLists.txt")
    return changed


@click.command("patch-lammps")
@click.argument("lammps_dir", type=click.Path(exists=True, file_okay=False))
def patch_lammps_cmd(lammps_dir: str) -> None:
    """Add pair_style ffpt and ffpt/kk (KOKKOS) to a LAMMPS source tree (CMake build)."""
    changed = patch_lammps(lammps_dir)
    click.echo(f"{lammps_dir}: " + (f"updated {', '.join(changed)}" if changed else
                                    "already up to date"))
    click.echo("now build with CMake, e.g. cmake -S cmake -B build -DPKG_KOKKOS=on "
               "-DKokkos_ENABLE_OPENMP=on -DCMAKE_CXX_STANDARD=17 -DCMAKE_PREFIX_PATH="
               "$(python -c 'import torch; print(torch.utils.cmake_prefix_path)') "
               "(docs/lammps.md)")
