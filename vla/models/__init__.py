"""Policy models on one shared VLM (see docs/DESIGN.md, "Models").

backbone.py     VLMBackbone: fused DINOv2 + SigLIP vision, projector, Qwen2 (BackboneConfig)
tokenizer.py    offline byte-level tokenizer (CPU scale) / the backbone's own (real size)
processor.py    PolicyProcessor: protocol batch -> model inputs, the same for training and inference
vla_adapter/    VLA-Adapter (Bridge-Attention L1 policy)
flow_matching/  flow-matching DiT policy (VLANeXt / pi0 family)
registry.py     MODEL_TYPES: model_type -> (ConfigClass, ModelClass)
checkpoint.py   save_pretrained / from_pretrained / load_policy_dir
policy.py       TorchPolicy: model + processor behind vla.protocol.Policy
"""
