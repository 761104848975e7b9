"""Test-session settings: 8 fake CPU devices, fast PRNG compiles, a persistent compile cache.

These must be set before JAX is imported anywhere, which is why they live here.
"""

import os

# Fast XLA compiles: the test programs are tiny, so backend optimisation costs more than it saves
# (it halves the compile time of the smoke train step on 2 cores).
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0 "
    "--xla_llvm_disable_expensive_passes=true",
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_THREEFRY_PARTITIONABLE", "0")
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    os.path.join(os.path.expanduser("~"), ".cache", "restorect_jax", "jax_test_cache"),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
