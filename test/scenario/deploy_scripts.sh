#!/bin/sh
# contrib/deploy/: divio_mirror.sh (mirrors through expand/contract, a
# refused release records nothing, a rollback is refused) and
# rolling_update.sh (begin, migrate, start, stop, finish; abort when the
# migration is refused, the new instances fail or the script is
# interrupted; left open when the old instances do not stop), driven with a
# generated Django project and their MIGRATE_CMD / START_CMD / STOP_OLD_CMD.
# See test/clients/test_deploy_scripts.py.
exec sh "$(dirname "$0")/../clients/run.sh" test_deploy_scripts "$@"
