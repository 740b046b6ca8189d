/*-------------------------------------------------------------------------
 * rollguard.h
 *		Declarations shared by rollguard's source files.
 *
 * A statement is analyzed into "changes" (analyze.c, asking catalog.c,
 * and nullness.c whether defaults and constraints let NULL in);
 * each kind of change is one row of the change-kind table (change.c);
 * undoable changes in a transaction block wait for its COMMIT
 * (net_effect.c); each change is judged against the registry of live
 * versions (rules.c, reading it through extension.c, probe.c and
 * registry.c); a change that breaks a live version is refused, or warned
 * about, or let through by an override (report.c, override.c).  guard.c
 * holds the hooks that drive this; check.c the dry run; stats.c the
 * counters for monitoring; module.c the module entry.  lock_checks.c is
 * the second family, the downtime guard: rewrites, index builds,
 * validations and lock waits that would stall deployed code, judged by the
 * table's real size.  liveness.c keeps when each deployment's tagged
 * sessions were last connected (and the settings stale_after and
 * forget_after): deployments without evidence are said to be stale in
 * refusals, and may expire.  manifest.c checks a manifest's shape in one pass for
 * register_version (the SQL in rollguard--1.7.sql names the errors).
 *-------------------------------------------------------------------------
 */
#ifndef ROLLGUARD_H
#define ROLLGUARD_H

#include "postgres.h"

#include "access/attnum.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/* Labels (versions, deployments): at most this many bytes. */
#define RG_LABEL_MAX 200

/* rollguard.enforce */
typedef enum RgEnforce
{
	RG_ENFORCE_OFF,
	RG_ENFORCE_WARN,
	RG_ENFORCE_ON
} RgEnforce;

extern int	rg_enforce;		/* report.c */

/* guard.c: an EXPLAIN without ANALYZE is running (it executes nothing) */
extern bool rg_explain_only;

/* Every kind of schema change that can break code still deployed. */
typedef enum RgChangeKind
{
	RG_DROP_COLUMN,
	RG_RENAME_COLUMN,
	RG_ALTER_TYPE,
	RG_SET_NOT_NULL,
	RG_CHECK_NOT_NULL,
	RG_DROP_DEFAULT,
	RG_DROP_IDENTITY,
	RG_ADD_NOT_NULL_COLUMN,
	RG_GENERATED_ALWAYS,
	RG_DROP_RELATION,
	RG_RENAME_RELATION,
	RG_MOVE_RELATION,
	RG_RENAME_SCHEMA,
	RG_CASCADE_DROP_COLUMN,
	RG_CASCADE_DROP_RELATION,
	RG_ATTACH_NOT_NULL,
	RG_TABLE_TO_VIEW,
	RG_DETACH_PARTITION,
	RG_DROP_PARTITION
} RgChangeKind;

#define RG_NUM_CHANGE_KINDS (RG_DROP_PARTITION + 1)

/*
 * The rule classes: which live versions a change of the class breaks.
 * ("inserts into t" = its contract lists a column of t that it writes.)
 */
typedef enum RgRuleClass
{
	RG_RULE_USES_COLUMN,		/* those that use the column */
	RG_RULE_USES_RELATION,		/* those that use any column of the relation */
	RG_RULE_MAY_WRITE_NULL,		/* those that may write NULL to the column,
								 * or insert without writing it and it has
								 * no default */
	RG_RULE_INSERTS_WITHOUT,	/* those that insert into the relation
								 * without writing the column */
	RG_RULE_WRITES_COLUMN,		/* those that write the column on INSERT */
	RG_RULE_INSERTS_INTO		/* those that insert into the relation */
} RgRuleClass;

/* What a change deletes from the catalog (object_access_hook sees it). */
typedef enum RgDrops
{
	RG_DROPS_NOTHING,
	RG_DROPS_RELATION,
	RG_DROPS_COLUMN				/* the column, or its default */
} RgDrops;

/* One row of the change-kind table (change.c). */
typedef struct RgChangeDesc
{
	const char *label;			/* the "change" column of rollguard.check() */
	RgRuleClass rule;
	bool		removes;		/* a name disappears (deploy's forward check) */
	RgDrops		drops;
	bool		dependent;		/* removed as a dependent object (cascade) */
	const char *message;		/* the refusal; arguments: see change.c */
	const char *message_plural;
	const char *hint;
	bool		undoable;		/* a later statement can undo it: judged on
								 * what the transaction leaves */
	/* the NOT NULL kinds: every blocker inserts without writing the column */
	const char *message_without;
	const char *message_without_plural;
	const char *hint_without;
	/* ... some do that, others may write NULL */
	const char *message_either;
	const char *message_either_plural;
} RgChangeDesc;

/* What the catalog says of a column (catalog.c). */
typedef struct RgColumnFacts
{
	bool		exists;
	bool		notnull;		/* attnotnull, or a NOT NULL domain (or a
								 * domain CHECK that rejects NULL) */
	bool		rejects_null;	/* a CHECK or partition bound rejects NULL
								 * (nullness.c) */
	bool		own_default;	/* a default DROP DEFAULT would remove */
	bool		other_default;	/* identity or generated */
	bool		type_default;	/* the domain's default */
	char		identity;		/* attidentity */
	Oid			typid;
	int32		typmod;
	Oid			collation;		/* attcollation */
} RgColumnFacts;

/* The column cannot take NULL, whatever says so. */
#define RG_FACTS_REJECT_NULL(f) ((f).notnull || (f).rejects_null)

#define RG_FACTS_HAVE_DEFAULT(f) \
	((f).own_default || (f).other_default || (f).type_default)

/* One change a statement makes, named as code names it. */
typedef struct RgChange
{
	RgChangeKind kind;
	Oid			relid;			/* InvalidOid if not (yet) in the catalog */
	AttrNumber	attnum;			/* 0 for a change of the whole relation */
	char		relkind;
	char	   *nspname;
	char	   *relname;
	char	   *attname;		/* NULL for a change of the whole relation */
	bool		has_default;	/* NOT NULL changes: column has a default */
	char	   *target;			/* new name, new schema, constraint name;
								 * hidden: the base column "s.t.c" */
	bool		hidden;			/* a change of a view's base column that the
								 * view does not show (inserts through the
								 * view leave it out); attname is "" */
	const char *statement;		/* judged after it (at commit, or at the end
								 * of a dry-run script): the statement that
								 * made it */
} RgChange;

/* A live version that a change breaks, and why. */
typedef struct RgBlocker
{
	char	   *deployment;
	char	   *version;
	bool		rolling_out;
	char	   *reason;			/* "uses public.person.weight" */
	bool		inserts_without;	/* NOT NULL kinds: it breaks because it
									 * inserts without writing the column,
									 * not because it may write NULL */
	char	   *evidence;		/* "connected now, pid 1234", or NULL if the
								 * registry says it is live */
	bool		unrecorded;		/* blocks because uses of the relation could
								 * not be recorded (observed table full) */
	bool		stale;			/* the registry says it is live, but it was
								 * not seen for rollguard.stale_after */
	TimestampTz last_deployed;	/* ... its last deploy step */
	TimestampTz last_connected; /* ... its last tagged session, 0 if none */
} RgBlocker;

/*
 * A deployment the registry records that is stale or expired
 * (rollguard._liveness(), registry.c).
 */
typedef struct RgLiveness
{
	char	   *deployment;
	TimestampTz last_deployed;
	TimestampTz last_connected; /* 0 if no tagged session was seen */
	bool		expired;		/* rollguard.forget_after: it no longer
								 * counts; else stale */
} RgLiveness;

/*
 * One row of a live version's contract for one relation (registry.c).  A
 * version live only by a connected session (connected) and without a
 * contract has one row, with attname NULL.
 */
typedef struct RgUsage
{
	char	   *deployment;
	char	   *version;
	bool		rolling_out;
	bool		connected;
	char	   *attname;
	bool		writes;
	bool		nullable;
	bool		observed;		/* a use tagged sessions were seen making,
								 * not (necessarily) in the contract */
	TimestampTz observed_at;	/* ... last seen then */
	bool		unrecorded;		/* an RgObserved loss, not a use */
	bool		by_version_limit;	/* ... by the per-version limit */
} RgUsage;

/* Counters of live use for a column and its relation (registry.c). */
typedef struct RgLiveCounts
{
	int			column_users;	/* live versions that use the column */
	int			column_nullable;	/* ... that may write NULL to it */
	int			column_writers; /* ... that write it on INSERT */
	int			relation_users; /* live versions that use the relation */
	int			relation_inserters; /* ... that insert into it */
	bool		other_sessions; /* a tagged session runs a version no
								 * deployment runs */
	bool		observed_live;	/* a version seen using the relation is
								 * live */
} RgLiveCounts;

/* A tagged session connected now (sessions.c). */
typedef struct RgSession
{
	char	   *deployment;
	char	   *version;
	int			pid;
	const char *source;			/* "setting" or "application_name" */
	bool		trusted;		/* its role may provide evidence
								 * (rollguard_tag) */
} RgSession;

/*
 * This session's own tags (sessions.c): by the settings, by
 * application_name, or both (two entries only if the versions differ).
 */
typedef struct RgSessionTags
{
	int			ntags;
	const char *deployment[2];
	const char *version[2];
	uint32		generation;		/* changes whenever the tags may have */
} RgSessionTags;

/*
 * A use of a column that tagged sessions of a version were seen making
 * (observed.c).
 */
typedef struct RgObserved
{
	char	   *version;
	char	   *attname;
	bool		reads;
	bool		writes;
	TimestampTz last_seen;
	/*
	 * Not a use but a loss: some uses of the relation by this version could
	 * not be recorded (attname NULL), because the table of observed uses
	 * was full (or, if by_version_limit, the version had its share of it).
	 * It counts as a use of every column in every way.
	 */
	bool		unrecorded;
	bool		by_version_limit;
} RgObserved;

/* What is wrong with a deployment name or version label (label.c). */
typedef enum RgLabelProblem
{
	RG_LABEL_OK,
	RG_LABEL_EMPTY,
	RG_LABEL_TOO_LONG,
	RG_LABEL_BAD_ENCODING,
	RG_LABEL_CONTROL,			/* a control or bidirectional character */
	RG_LABEL_BLANK_END			/* white space at either end */
} RgLabelProblem;

typedef struct RgLabelCheck
{
	RgLabelProblem problem;
	int			length;			/* in bytes */
	unsigned int character;		/* RG_LABEL_CONTROL: which (code point) */
	int			position;		/* ... and where (from 1) */
} RgLabelCheck;

/* label.c */
extern RgLabelCheck rg_label_check(const char *label);
extern bool rg_is_white_space(unsigned int c);
extern bool rg_is_blank(const char *s);

/* Can a default be NULL (nullness.c)? */
typedef enum RgYield
{
	RG_YIELDS_VALUE,			/* never NULL */
	RG_YIELDS_NULL,
	RG_YIELDS_UNKNOWN			/* may be NULL: counts as no default */
} RgYield;

/* What a constraint says of NULL in a column (nullness.c), weakest first. */
typedef enum RgNullVerdict
{
	RG_ACCEPTS_NULL,
	RG_MAY_REJECT_NULL,			/* depends on other columns, or unknown */
	RG_REJECTS_NULL
} RgNullVerdict;

struct PartitionBoundSpec;
struct RelationData;

/* nullness.c */
extern RgYield rg_default_yield(Node *cooked);
extern RgYield rg_raw_default_yield(Node *raw, Oid typid, int32 typmod,
									const char *attname);
extern RgNullVerdict rg_constraint_null_verdict(Node *cooked, AttrNumber attnum);
extern bool rg_raw_check_null_verdict(Oid relid, Node *raw, AttrNumber attnum,
									  const char *newcol, Oid newtype,
									  int32 newtypmod, RgNullVerdict *verdict);
extern bool rg_raw_domain_check_null_verdict(Node *raw, Oid basetype,
											 int32 basetypmod,
											 RgNullVerdict *verdict);
extern RgNullVerdict rg_relation_null_verdict(struct RelationData *rel,
											  AttrNumber attnum);
extern List *rg_attach_rejects_null(Oid parent, Oid partition,
									struct PartitionBoundSpec *bound);

/* catalog.c */
extern bool rg_relation_is_guarded(Oid relid, char *relkind_out);
extern RgColumnFacts rg_column_facts(Oid relid, AttrNumber attnum);
extern RgColumnFacts rg_column_facts_by_name(Oid relid, const char *attname,
											 AttrNumber *attnum);
extern void rg_type_default_notnull(Oid typid, Oid skip, bool *has_default,
									bool *notnull);
extern RgNullVerdict rg_type_null_facts(Oid typid, Oid skip, bool *has_default);
extern bool rg_type_widens(Oid oldtype, int32 oldmod, Oid newtype, int32 newmod);
extern bool rg_column_type_widens(const RgColumnFacts *before,
								  const RgColumnFacts *after);
extern List *rg_columns_of_type(Oid typid);

/*
 * What earlier statements of a dry-run script (or earlier commands of one
 * statement) did to columns and relations (analyze.c).
 */
typedef struct RgOverlay RgOverlay;

/* analyze.c */
extern bool rg_is_candidate(Node *parsetree);
extern RgOverlay *rg_overlay_new(bool lock);
extern List *rg_analyze_statement(Node *parsetree, RgOverlay *overlay);
extern bool rg_overlay_leaves(RgOverlay *overlay, RgChange *ch);
extern char *rg_statement_text(const char *query, int location, int len);
extern RgChange *rg_make_change(RgChangeKind kind, Oid relid, const char *attname);
extern bool rg_default_is_gone(RgChange *change);

/* change.c */
extern const RgChangeDesc *rg_change_desc(RgChangeKind kind);
extern const char *rg_relkind_word(char relkind);
extern bool rg_change_listed(List *changes, RgChange *ch);

/* net_effect.c */
extern void rg_net_note_toplevel(void);
extern void rg_net_begin_statement(bool toplevel);
extern void rg_net_touch(Oid relid, const char *attname);
extern void rg_net_original_names(RgChange *ch);
extern List *rg_net_defer(List *changes, const char *query, int location,
						  int len);
extern bool rg_net_keeps_judged(void);
extern void rg_net_keep_judged(List *changes, List *clean, const char *query,
							   int location, int len);
extern bool rg_net_column_change_stays(RgChange *ch, const RgColumnFacts *before,
									   const RgColumnFacts *now, bool constraint_stays);

/* rules.c */
extern List *rg_evaluate(RgChange *change, List *sessions);

/* report.c */
extern List *rg_enforce_changes(List *changes);
extern void rg_report_define_settings(void);

/*
 * The versions of the extension's SQL scripts (rollguard--*.sql) the
 * library knows, in order (as pg_stat_statements numbers its own).
 */
typedef enum RgApiVersion
{
	RG_API_NONE = -1,			/* not installed */
	RG_API_1_0 = 0,
	RG_API_1_1,
	RG_API_1_2,
	RG_API_1_3,					/* the counters of live use, observed uses */
	RG_API_1_4,					/* the registry announces its changes */
	RG_API_1_5,					/* deploy steps without advisory locks */
	RG_API_1_6,					/* evidence only from rollguard_tag; deploy
								 * steps see prepared transactions */
	RG_API_1_7					/* day two: liveness evidence, expiry */
} RgApiVersion;

#define RG_API_LATEST RG_API_1_7

/* registry.c */
extern bool rg_extension_active(void);
extern RgApiVersion rg_api_version(void);
extern void rg_lock_registry(void);
extern void rg_unlock_registry(void);
extern void rg_lock_registry_for_prepare(void);
extern void rg_registry_prepare_judged(void);
extern void rg_unlock_registry_after_prepare(void);
extern bool rg_counters_installed(void);
extern bool rg_fetch_counts(const char *nspname, const char *relname,
							const char *attname, List *sessions,
							List *observed_versions, RgLiveCounts *counts);
extern List *rg_fetch_live_pairs(List *versions);
extern List *rg_fetch_usage(const char *nspname, const char *relname,
							 const char *attname, bool for_not_null,
							 List *sessions, bool registry);
extern char *rg_fetch_successor_without(const char *nspname, const char *relname,
										const char *attname, const char *after);
extern void rg_record_removals(List *changes);
extern List *rg_fetch_stale_deployments(void);
extern void rg_note_expiries(void);
extern void rg_log_history(const char *action, const char *nspname,
						   const char *relname, const char *attname,
						   const char *reason, const char *detail_json);

/* override.c */
extern const char *rg_override_reason(RgChange *change);

/* rollguard.lock_checks (lock_checks.c) */
typedef enum RgLockChecks
{
	RG_LOCK_CHECKS_OFF,
	RG_LOCK_CHECKS_WARN,
	RG_LOCK_CHECKS_ON
} RgLockChecks;

extern int	rg_lock_checks;

/* One way a statement would stall deployed code (lock_checks.c). */
typedef struct RgLockFinding
{
	const char *check;			/* the "change" column of rollguard.check() */
	Oid			relid;
	char	   *nspname;
	char	   *relname;
	char	   *attname;		/* NULL unless it is about one column */
	char	   *message;		/* the refusal's or warning's texts */
	char	   *detail;
	char	   *hint;
	const char *statement;
	int64		bytes;			/* what was measured */
	double		rows;			/* -1: not counted (never analyzed) */
} RgLockFinding;

/* What a dry-run script did so far, as the downtime checks see it. */
typedef struct RgLockScript RgLockScript;

/* lock_checks.c */
extern void rg_lock_define_settings(void);
extern RgLockScript *rg_lock_script_new(void);
extern List *rg_lock_check_statement(Node *parsetree, const char *query,
									 int location, int len, RgLockScript *script);
extern void rg_lock_checks_statement(Node *parsetree, const char *query,
									 int location, int len);

/* version_order.c */
extern int	rg_version_cmp(const char *a, int alen, const char *b, int blen);

/* sessions.c */
extern void rg_sessions_define_settings(void);
extern void rg_sessions_install_hooks(void);
extern void rg_sessions_shmem_request(void);
extern void rg_sessions_shmem_startup(void);
extern List *rg_live_sessions(bool with_self);
extern bool rg_role_may_tag(Oid roleid);
extern bool rg_session_trusted(void);
extern void rg_sessions_note_appname(void);
extern const RgSessionTags *rg_session_tags(void);

/* liveness.c */
extern void rg_liveness_define_settings(void);
extern void rg_liveness_shmem_request(void);
extern void rg_liveness_shmem_startup(void);
extern void rg_liveness_stamp(Oid dbid, Oid userid, const char *deployment);
extern void rg_liveness_save_if_changed(uint64 *saved);
extern bool rg_forget_after_on(void);

/* observed.c */
extern void rg_observed_define_settings(void);
extern void rg_observed_install_hooks(void);
extern void rg_observed_shmem_request(void);
extern void rg_observed_shmem_startup(void);
extern List *rg_observed_for(const char *nspname, const char *relname,
							 const char *attname);

/* What stats.c counts (rollguard.stats_info). */
typedef enum RgStat
{
	RG_STAT_STATEMENTS,			/* statements the guard analyzed */
	RG_STAT_DRY_RUN_STATEMENTS, /* statements rollguard.check() analyzed */
	RG_STAT_CHANGES,			/* changes judged against the registry */
	RG_NUM_STATS
} RgStat;

/* What became of a breaking change (rollguard.stats). */
typedef enum RgOutcome
{
	RG_OUTCOME_REFUSED,
	RG_OUTCOME_WARNED,			/* enforce = warn */
	RG_OUTCOME_LET_THROUGH,		/* enforce = off */
	RG_OUTCOME_OVERRIDDEN,
	RG_NUM_OUTCOMES
} RgOutcome;

/* stats.c */
extern void rg_stats_shmem_request(void);
extern void rg_stats_shmem_startup(void);
extern void rg_stats_count(RgStat which);
extern void rg_stats_outcome(RgChangeKind kind, RgOutcome outcome);

/* guard.c */
extern void rg_install_hooks(void);

#endif							/* ROLLGUARD_H */
