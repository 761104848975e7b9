"""restorect_jax: fast image restoration by distillation with rectified flows."""
