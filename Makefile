# rollguard: PGXS build.  `make && make install`; `make installcheck` runs the
# pg_regress suites against a server that preloads rollguard (see README).

EXTENSION = rollguard
MODULE_big = rollguard
OBJS = src/rollguard.o src/guard.o src/analyze.o src/catalog.o src/change.o \
       src/net_effect.o src/rules.o src/report.o \
       src/registry.o src/version_order.o src/check.o \
       src/override.o src/sessions.o src/observed.o
DATA = rollguard--1.0.sql rollguard--1.0--1.1.sql rollguard--1.1--1.2.sql \
       rollguard--1.2--1.3.sql rollguard--1.3--1.4.sql \
       rollguard--1.4--1.5.sql
PGFILEDESC = "rollguard - refuse schema changes that break deployed code"

REGRESS = install version_order registry manifest deploy rules_columns \
          rules_not_null rules_relations live_counters statement_forms cascade check \
          enforce seed_scenario net_effect privileges override history sessions observed observed_rules upgrade
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=./test/rollguard.conf

PG_CONFIG ?= pg_config
PG_CPPFLAGS += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers $(ICU_CFLAGS)
SHLIB_LINK += $(ICU_LIBS)

# no JIT bitcode: it needs clang, and buys nothing for a utility hook
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not know ICU's flags for out-of-tree builds everywhere
ifeq ($(ICU_LIBS),)
SHLIB_LINK += $(shell pkg-config --libs icu-uc icu-i18n 2>/dev/null || echo -licui18n -licuuc)
endif
