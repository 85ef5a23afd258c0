"""The system watching itself: flow-run heartbeats (queries) and the pure rules `bianmin watch` judges them by."""
