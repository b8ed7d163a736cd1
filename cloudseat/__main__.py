from cloudseat.cli import main

raise SystemExit(main())
