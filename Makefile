# rollguard: PGXS build.  `make && make install`, then:
#   make installcheck         the pg_regress suites (sql/, expected/) and the
#                             isolation specs (specs/, expected/), against
#                             the running server PGHOST/PGPORT name (it must
#                             preload rollguard; run as a superuser, e.g. the
#                             postgres user), in databases of their own
#   make installcheck RG_TEMP_INSTANCE=1
#                             the same, each on a temporary instance that
#                             preloads rollguard (test/rollguard.conf): what
#                             test/run-tests.sh runs
#   make prove_installcheck   the TAP tests (test/t/*.pl), on clusters of
#                             their own
# test/run-tests.sh installs what they need and runs them all (see README).

EXTENSION = rollguard
MODULE_big = rollguard
OBJS = src/module.o src/guard.o src/analyze.o src/catalog.o src/change.o src/label.o \
       src/nullness.o src/net_effect.o src/rules.o src/report.o \
       src/extension.o src/probe.o src/registry.o src/version_order.o src/check.o \
       src/override.o src/sessions.o src/observed.o src/observed_store.o src/stats.o \
       src/lock_checks.o src/liveness.o src/manifest.o src/forward_check.o
DATA = rollguard--1.0.sql rollguard--1.0--1.1.sql rollguard--1.1--1.2.sql \
       rollguard--1.2--1.3.sql rollguard--1.3--1.4.sql \
       rollguard--1.4--1.5.sql rollguard--1.5--1.6.sql rollguard--1.6--1.7.sql \
       rollguard--1.7.sql
PGFILEDESC = "rollguard - refuse schema changes that break deployed code"

REGRESS = install install_script version_order registry manifest deploy forward_writes rules_columns \
          rules_not_null rules_relations live_counters statement_forms cascade check \
          enforce seed_scenario net_effect properties other_routes day_two liveness stats privileges deployment_keys override history lock_checks sessions observed observed_rules shadowing upgrade
ifdef RG_TEMP_INSTANCE
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=./test/rollguard.conf
endif

# migrations racing deploy steps, and what a session keeps between checks
ISOLATION = $(basename $(notdir $(sort $(wildcard specs/*.spec))))
ifdef RG_TEMP_INSTANCE
ISOLATION_OPTS = --temp-instance=./tmp_check_iso --temp-config=./test/rollguard.conf
endif

# restarts, crashes, dump and restore, upgrades, the server log, sessions
PROVE_TESTS ?= $(sort $(wildcard test/t/*.pl))

PG_CONFIG ?= pg_config
PG_CPPFLAGS += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers $(ICU_CFLAGS)
SHLIB_LINK += $(ICU_LIBS)

# no JIT bitcode: it needs clang, and buys nothing for a utility hook
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# out-of-tree (VPATH) builds, as pg_buildext makes them: the objects'
# directory
ifdef VPATH
$(shell mkdir -p src)
endif

# PGXS defines how to run TAP tests, and runs them in installcheck only with
# TAP_TESTS = 1; here they have a target of their own
PROVE_FLAGS = --timer
.PHONY: prove_installcheck
prove_installcheck:
	$(prove_installcheck)

clean: clean-tap
.PHONY: clean-tap
clean-tap:
	rm -rf tmp_check/

# PGXS does not know ICU's flags for out-of-tree builds everywhere
ifeq ($(ICU_LIBS),)
SHLIB_LINK += $(shell pkg-config --libs icu-uc icu-i18n 2>/dev/null || echo -licui18n -licuuc)
endif
