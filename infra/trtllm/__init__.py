"""TensorRT-LLM knowledge: the engine-config schema and rules, the model catalog, the GPU-memory plan."""
