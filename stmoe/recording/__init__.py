"""Recording routing traces from Hugging Face transformers MoE models (the optional torch wing:
install the `record` extra). `recorder` hooks a real model's routers; `toy_model` builds small
randomly initialised MoE models for tests and notebook 07."""
