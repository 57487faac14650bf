"""Networks (towers, fusion), the LightningModule and the baselines."""
