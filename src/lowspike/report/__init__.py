"""Tables and figures of both papers, from the aggregated metric files."""
