"""The LIMR kopf operator: thin kopf handlers -> pure reconcile -> pure builders.

Imports `limr_api` and nothing of the trainer (its image has no torch, no Ray, no trainer code).
"""
