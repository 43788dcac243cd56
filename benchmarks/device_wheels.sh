#!/usr/bin/env bash
# Fetch into .whl/ (git-ignored) the wheels `benchmarks/device_run.sh` installs on the GPU machine, which has no
# network: what `python -m benchmarks run device` imports that the machine lacks (flowjax, paramax, pydantic,
# astropy, dask, zarr, numcodecs, ...) and our own versions of the pure-Python JAX libraries (PYTHONPATH wins
# over the machine's), all pinned to this project's venv. Not jax/jaxlib/numpy: the machine's CUDA ones are used.
# Target: CPython 3.12 on manylinux x86_64. Run from the repository root: `bash benchmarks/device_wheels.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
WHEELS=(
  absl-py==2.5.1 annotated-types==0.8.0 astropy==8.0.2 astropy-iers-data==0.2026.11.16.0.37.44 click==8.5.1
  cloudpickle==3.1.3 dask==2026.8.0 diffrax==0.7.2 donfig==0.8.1.post1 emcee==3.1.6 equinox==0.13.8 flowjax==19.1.2
  google-crc32c==1.9.0 importlib_metadata==10.2.0 intake==2.0.9 jaxtyping==0.3.11 lineax==0.1.1 locket==1.0.0
  numcodecs==0.16.6 optax==0.2.8 optimistix==0.1.0 packaging==26.4 paramax==0.0.5 partd==1.4.2 platformdirs==4.14.9
  pydantic==2.14.4 pydantic_core==2.50.5 pyerfa==2.0.1.5 toolz==1.2.0 tqdm==4.70.1 typing-inspection==0.4.5
  typing_extensions==4.16.0 wadler_lindig==0.1.8 xarray==2026.9.0 zarr==3.1.6 zipp==4.1.2
)
rm -rf .whl && mkdir -p .whl
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
echo "$(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1) in .whl/"
