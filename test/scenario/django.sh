#!/bin/sh
# rollguard with real Django: generated projects, migrations written by
# manage.py makemigrations, and manage.py migrate refused while a deployment
# runs the version it would break, then allowed once every deployment moved
# on (manage.py rollguard_deploy).
#
# On bookworm's python3-django (3.2), every scenario: RemoveField (also of a
# ForeignKey, a ManyToManyField), AddField NOT NULL with a Python default
# (refused at DROP DEFAULT, and the safe path), AlterField null -> NOT NULL,
# RenameField, RenameModel, DeleteModel, additive changes, the downtime
# guard (AddIndex on a large table), rollguard_manifest, rollguard_deploy.
#
# On Django 4.2 with psycopg2 and 5.2 with psycopg 3 (Debian's packages from
# the newer suites of the same archive, fetched once with a private apt
# configuration and cached under test/cache/; see
# test/clients/django_debs.sh), the migration scenarios again (RemoveField
# on 5.2: procedure.sh), and those of features 3.2 lacks: AddField with db_default= (allowed
# while old code inserts; dropping the default refused while a version relies
# on it) and GeneratedField (5.0+), a composite primary key (5.2).  They
# skip on a Django too old for them.
# See test/clients/test_django.py.
set -u
here=$(dirname "$0")
status=0
echo "# Django 3.2 (python3-django, bookworm): every scenario"
sh "$here/../clients/run.sh" test_django "$@" || status=1
if [ $# -eq 0 ]; then
	# (RemoveField on 5.2 is procedure.sh's first release: kept out here to
	# keep the suite short)
	set -- AddFieldNotNull AddFieldDbDefault AlterFieldNotNull RenameField \
		RenameModel DeleteModel AddGeneratedField CompositePrimaryKey
	echo "# Django 4.2 (psycopg2): the migration scenarios"
	RG_DJANGO=4.2 sh "$here/../clients/run.sh" test_django RemoveField "$@" || status=1
	echo "# Django 5.2 (psycopg 3): the migration scenarios"
	RG_DJANGO=5.2 RG_PSYCOPG=3 sh "$here/../clients/run.sh" test_django "$@" || status=1
fi
exit $status
