"""The verbs: the command line (run, boot, series, bisect, rerun, compare, kernels)
and the operations behind them."""
