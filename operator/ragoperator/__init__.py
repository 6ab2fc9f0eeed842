"""Ragline's control plane: the kopf operator for RagIndex, InferencePool and ProviderBudget."""
