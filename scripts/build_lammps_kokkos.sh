#!/usr/bin/env bash
# Build a KOKKOS LAMMPS (OpenMP + Serial, C++17, no MPI) with pair_style ffpt and ffpt/kk patched
# in (`ffpt patch-lammps`), for tests/test_kokkos.py. The result is cached as
#   ~/.cache/ffpt/lammps-kokkos/<key>/lmp      (FFPT_KOKKOS_CACHE to move it)
# where <key> hashes the LAMMPS/Kokkos sources, the ffpt C++ files, patch.py and this script, and
# its path is printed on the last line. The tree and build folder in <cache>/work are kept, and
# ccache is used, so a change of the ffpt C++ files rebuilds only those (~1 min); a cold build
# takes ~30-60 min on 2 busy cores.
#   bash scripts/build_lammps_kokkos.sh            # build if needed, print the lmp path
#   bash scripts/build_lammps_kokkos.sh --cached   # print the path if built for these sources
# Sources: FFPT_LAMMPS_KOKKOS_TARBALL (default ../shared/vendor/lammps-20220106-kokkos-min.tar.gz:
# LAMMPS + Kokkos, ready to configure) or any LAMMPS source tarball; if it has no lib/kokkos,
# FFPT_KOKKOS_TARBALL (default ../shared/vendor/kokkos-3.4.01.tar.gz) is unpacked there. A
# cmake/CMakeLists.txt that hard-codes C++11 gets ../shared/vendor/lammps-cxx-standard.patch.
# Extra CMake flags: FFPT_KOKKOS_CMAKE_FLAGS (e.g. "-DKokkos_ENABLE_CUDA=on -DKokkos_ARCH_HOPPER90=on").
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
vendor="${FFPT_VENDOR_DIR:-$repo/../shared/vendor}"
lammps_tgz="${FFPT_LAMMPS_KOKKOS_TARBALL:-$vendor/lammps-20220106-kokkos-min.tar.gz}"
kokkos_tgz="${FFPT_KOKKOS_TARBALL:-$vendor/kokkos-3.4.01.tar.gz}"
cxx_patch="${FFPT_LAMMPS_CXX_PATCH:-$vendor/lammps-cxx-standard.patch}"
cache="${FFPT_KOKKOS_CACHE:-$HOME/.cache/ffpt/lammps-kokkos}"
py="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$py" ] || py=python3
extra_flags="${FFPT_KOKKOS_CMAKE_FLAGS:-}"

die() { echo "build_lammps_kokkos: $*" >&2; exit 2; }
[ -f "$lammps_tgz" ] || die "$lammps_tgz not found; set FFPT_LAMMPS_KOKKOS_TARBALL to a LAMMPS source tarball"

# cache key: sources + everything that goes into the ffpt part of the build
key=$( { sha256sum "$lammps_tgz" | cut -d' ' -f1; [ -f "$kokkos_tgz" ] && sha256sum "$kokkos_tgz" | cut -d' ' -f1
         echo "$extra_flags"
         cd "$repo" && sha256sum lammps_plugin/*.cpp lammps_plugin/*.h lammps_plugin/kokkos/* \
             ffpt/lammps/patch.py scripts/build_lammps_kokkos.sh 2>/dev/null || true; } | sha256sum | cut -c1-16)
out="$cache/$key"
if [ -x "$out/lmp" ]; then echo "$out/lmp"; exit 0; fi
if [ "${1:-}" = "--cached" ]; then
    echo "build_lammps_kokkos: no KOKKOS LAMMPS built for these sources (key $key in $cache);" \
         "run bash scripts/build_lammps_kokkos.sh (30-60 min cold)" >&2
    exit 1
fi

work="$cache/work"
mkdir -p "$work"
exec 9>"$work/.lock"
flock -n 9 || die "another build holds $work/.lock"
src_key=$(sha256sum "$lammps_tgz" | cut -c1-16)
tree="$work/lammps"
if [ "$(cat "$work/.source" 2>/dev/null)" != "$src_key" ]; then
    echo "unpacking $lammps_tgz into $tree" >&2
    rm -rf "$tree" "$work/build"
    mkdir -p "$tree"
    tar xzf "$lammps_tgz" -C "$tree" --strip-components=1
    if [ ! -f "$tree/lib/kokkos/CMakeLists.txt" ]; then
        [ -f "$kokkos_tgz" ] || die "$tree has no lib/kokkos and $kokkos_tgz is missing (FFPT_KOKKOS_TARBALL)"
        mkdir -p "$tree/lib/kokkos"
        tar xzf "$kokkos_tgz" -C "$tree/lib/kokkos"
        # archives with one top folder (GitHub's kokkos-3.4.01/): move its content up
        top=("$tree"/lib/kokkos/*)
        if [ ${#top[@]} -eq 1 ] && [ -d "${top[0]}" ]; then
            mv "${top[0]}"/* "$tree/lib/kokkos/" && rmdir "${top[0]}"
        fi
    fi
    if grep -q '^set(CMAKE_CXX_STANDARD 11)' "$tree/cmake/CMakeLists.txt"; then
        patch -d "$tree" -p1 <"$cxx_patch" >&2
    fi
    echo "$src_key" >"$work/.source"
fi

# styles the ffpt tests and checks do not use (and nothing in the build includes): a third less
# to compile (their KOKKOS variants are the slowest files); FFPT_KOKKOS_PRUNE=0 keeps them all
if [ "${FFPT_KOKKOS_PRUNE:-1}" = 1 ]; then
    for f in pair_born pair_buck pair_buck_coul_cut pair_coul_cut pair_coul_debye pair_coul_dsf \
        pair_coul_wolf pair_lj_cut_coul_cut pair_lj_expand pair_morse pair_soft pair_table \
        pair_yukawa pair_zbl region_cone region_cylinder region_plane region_sphere \
        region_intersect region_union fix_wall fix_wall_harmonic fix_wall_lj1043 fix_wall_lj126 \
        fix_wall_lj93 fix_wall_morse fix_wall_reflect fix_viscous; do
        rm -f "$tree/src/$f.cpp" "$tree/src/$f.h"
    done
    for f in atom_vec_charge atom_vec_sphere compute_coord_atom compute_orientorder_atom \
        compute_temp_deform fix_deform fix_enforce2d fix_gravity fix_langevin fix_momentum \
        fix_nph fix_npt fix_nve_sphere fix_nvt fix_nvt_sllod fix_setforce fix_wall_lj93 \
        fix_wall_reflect pair_buck_coul_cut pair_buck pair_coul_cut pair_coul_debye pair_coul_dsf \
        pair_coul_wolf pair_hybrid pair_hybrid_overlay pair_lj_cut_coul_cut pair_lj_cut \
        pair_lj_expand pair_morse pair_table pair_yukawa pair_zbl region_block fix_neigh_history; do
        rm -f "$tree/src/KOKKOS/${f}_kokkos.cpp" "$tree/src/KOKKOS/${f}_kokkos.h"
    done
    # neighbour-list builders of half lists, 2-d and multi/size (ffpt: full lists, 3-d)
    (cd "$tree/src" && rm -f npair_half* nstencil_half* npair_skip* npair_halffull* \
        npair_full_multi* npair_full_size* nstencil_full_multi* nstencil_full_*2d*)
fi
(cd "$repo" && "$py" -m ffpt.cli patch-lammps "$tree") >&2

launcher=()
if command -v ccache >/dev/null; then    # rebuilds in seconds; optional (apt-get install ccache)
    export CCACHE_BASEDIR="$work" CCACHE_NOHASHDIR=1
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
else
    echo "build_lammps_kokkos: ccache not found, building without it" >&2
fi
torch_prefix=$("$py" -c "import torch; print(torch.utils.cmake_prefix_path)")
cmake_bin="$(dirname "$py")/cmake"
[ -x "$cmake_bin" ] || cmake_bin=cmake
start=$(date +%s)
# shellcheck disable=SC2086
"$cmake_bin" -S "$tree/cmake" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_STANDARD=17 -DBUILD_MPI=off -DBUILD_OMP=on -DPKG_KOKKOS=on \
    -DKokkos_ENABLE_OPENMP=on -DKokkos_ENABLE_SERIAL=on "${launcher[@]}" \
    -DCMAKE_PREFIX_PATH="$torch_prefix" -DMKL_INCLUDE_DIR=/usr/include $extra_flags >&2
# -k: keep compiling the rest (and filling ccache) when one file fails
nice -n 5 make -C "$work/build" -k -j"${FFPT_BUILD_JOBS:-2}" >&2
mkdir -p "$out"
cp "$work/build/lmp" "$out/lmp.tmp" && mv "$out/lmp.tmp" "$out/lmp"
echo "built in $(( $(date +%s) - start )) s (load $(cut -d' ' -f1-3 /proc/loadavg))" | tee "$out/build.txt" >&2
echo "$out/lmp"
