"""The machine model: hardware presets and model sizes, the expert buffer, the event-driven
timing and energy model, the systems compared, and the comparisons and sweeps built on them.

Data flow inside: `hardware` (what the machine and model cost) and `buffer` (the expert buffer's
state and replacement policies) feed `timing` (one run of one system); `systems` says what each
system fetches and keeps; `comparison` and `sweeps` run several."""
