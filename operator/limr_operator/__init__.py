"""The LIMR kopf operator: thin kopf handlers -> pure reconcile -> pure builders.

Imports only `limr_trainer.spec` from the trainer side (no torch, no Ray).
"""
