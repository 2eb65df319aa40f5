//! Log output: text or ECS JSON lines.
