from pipelines.stages.fairness.stage import main

raise SystemExit(main())
