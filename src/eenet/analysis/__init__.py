"""Analysis and figures: test-set evaluation (:mod:`.evaluation`), statistics over seeds and budgets (:mod:`.stats`),
the exit analysis (:mod:`.exits`), the reliability study (:mod:`.reliability`), figures (:mod:`.plotting`) and HTML
tables (:mod:`.tables`)."""
