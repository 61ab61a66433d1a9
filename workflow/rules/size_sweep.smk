# The size sweep: pruning gain against training-set size. Each size is a dataset of its own (a nested
# class-balanced subset, made by prepare_data), scored by short scoring runs cut at the sweep's score
# epoch; its retraining runs are the retrain rule's (random, <score>, easy-<score>, full).
