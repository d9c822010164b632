from sonosteer.cli import main

raise SystemExit(main())
