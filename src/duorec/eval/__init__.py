"""How duorec is measured (docs/protocol.md), one module per part:

* `protocol`: `evaluate`, the list of sections that fills metrics.json;
* `scoring`: helpers every section shares (predictions, ranking grids, samples, intervals);
* `history`: each person's history at test time;
* `fitting`: the rating and ranking baselines, fitted and tuned beside the model;
* `ranking`, `groups`, `coldstart`: the sections' own protocols;
* `rank_weight`, `foldin_choice`: settings of the model chosen on validation after training.
"""
