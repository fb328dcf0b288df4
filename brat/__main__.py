from brat.cli import main

raise SystemExit(main())
