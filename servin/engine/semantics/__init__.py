"""docker semantics shared by every front door: filters, status texts, inspect documents,
create options."""
