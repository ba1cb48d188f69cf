"""archsim's own architecture definitions, one module per family (each registers its models)."""
