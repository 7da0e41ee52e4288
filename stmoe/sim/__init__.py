"""The machine model: model configurations, hardware presets and model sizes, the expert buffer, the event-driven
timing and energy model, the systems compared, and the comparisons and sweeps built on them.

Data flow inside: `models` (the registry of MoE model shapes) feeds `hardware` (what the
machine and one token of the model cost); `hardware` and `buffer` (the expert buffer's
state and replacement policies) feed `timing` (one run of one system); `systems` says what each
system fetches and keeps; `comparison` and `sweeps` run several; `conditions` searches the assumptions for where st-moe
reaches the paper's gains."""
