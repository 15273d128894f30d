"""The QLoRA recipe that teaches a base model the routing policy, and the cache of adapters it builds."""
