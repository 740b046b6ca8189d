/*-------------------------------------------------------------------------
 * lock_checks.c
 *		The downtime guard: the second family of checks, beside the
 *		compatibility rules.  A migration that does not break deployed code
 *		can still stall it: a table rewrite or an index build under a lock
 *		that blocks writes, a constraint validated under ACCESS EXCLUSIVE, an
 *		ACCESS EXCLUSIVE request that queues every later query behind a
 *		long-running one.  Linters guess these from SQL text; here they are
 *		judged with what only the server knows: the table's real size
 *		(pg_relation_size, reltuples), whether it was created in this
 *		transaction (never flagged: nobody else can see it), whether a valid
 *		CHECK already proves a column NOT NULL, whether PostgreSQL would
 *		rewrite the table for this type change or default, which locks this
 *		transaction already holds, the session's lock_timeout, and whether
 *		other sessions hold locks on the table right now.
 *
 * rollguard.lock_checks (off, warn, on) decides what is done with a
 * finding; rollguard.lock_checks_min_size is the size below which a table
 * is small enough to rewrite, scan or index under a lock.  A refusal is
 * SQLSTATE 55000 (object_not_in_prerequisite_state): "would stall deployed
 * code", where the compatibility rules' 55006 (object_in_use) says "would
 * break it".  rollguard.override() on the relation (or, for a column's
 * finding, the column) lets one through for the transaction, recorded in
 * rollguard.history; so is each finding that warn lets through.
 *
 * Only the statements concerned are looked at (ALTER TABLE, CREATE INDEX,
 * DROP INDEX, REINDEX, VACUUM FULL, CLUSTER); for anything else the hook
 * costs one switch on the node tag.  Only the relations the compatibility
 * rules guard (rg_relation_is_guarded: not the system catalogs, not
 * rollguard's own schema, not temporary tables, which no other session
 * can use).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_inherits.h"
#include "commands/defrem.h"
#include "commands/tablecmds.h"
#include "common/keywords.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "catalog/heap.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "catalog/pg_type.h"
#include "parser/parse_node.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "compat.h"
#include "rollguard.h"

/* rollguard.lock_checks */
int			rg_lock_checks = RG_LOCK_CHECKS_WARN;

/* rollguard.lock_checks_min_size, in kB */
static int	min_size_kb = 10 * 1024;

static const struct config_enum_entry lock_checks_options[] = {
	{"on", RG_LOCK_CHECKS_ON, false},
	{"warn", RG_LOCK_CHECKS_WARN, false},
	{"off", RG_LOCK_CHECKS_OFF, false},
	{"true", RG_LOCK_CHECKS_ON, true},
	{"false", RG_LOCK_CHECKS_OFF, true},
	{NULL, 0, false}
};

void
rg_lock_define_settings(void)
{
	/*
	 * The default is warn: a guard installed for compatibility must not
	 * start refusing migrations that ran yesterday when it is upgraded; it
	 * says what would stall, and the DBA turns it on.  Superuser only, as
	 * rollguard.enforce.
	 */
	DefineCustomEnumVariable("rollguard.lock_checks",
							 "What rollguard does with a schema change that would stall deployed code (lock and rewrite safety).",
							 "on refuses it; warn (the default) reports it as a WARNING, records it in rollguard.history and lets it through; off does not look.",
							 &rg_lock_checks,
							 RG_LOCK_CHECKS_WARN,
							 lock_checks_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("rollguard.lock_checks_min_size",
							"Tables smaller than this may be rewritten, scanned or indexed under a lock.",
							"The size is the table's main fork (pg_relation_size), summed over its partitions or inheriting tables when the statement reaches them.",
							&min_size_kb,
							10 * 1024,
							0,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
}

/*-------------------------------------------------------------------------
 * What a table measures
 *-------------------------------------------------------------------------
 */
typedef struct Measure
{
	int64		bytes;			/* main fork, summed over what is reached */
	double		rows;			/* reltuples summed; -1 if never counted */
	bool		created_here;	/* created in this transaction */
} Measure;

/*
 * The dry run's state across a script: what the script has done so far
 * that the catalog does not show yet.
 */
struct RgLockScript
{
	bool		lock_timeout_known; /* the script SET lock_timeout */
	bool		lock_timeout_on;	/* ... to something other than 0 */
	List	   *locked;			/* LockedRel: ALTER TABLE locks taken */
};

typedef struct LockedRel
{
	Oid			relid;
	LOCKMODE	mode;
} LockedRel;

/* One statement being looked at. */
typedef struct Ctx
{
	RgLockScript *script;		/* NULL in the guard */
	const char *query;			/* the statement's text, computed lazily */
	int			location;
	int			len;
	char	   *text;
	List	   *findings;
} Ctx;

RgLockScript *
rg_lock_script_new(void)
{
	return palloc0(sizeof(RgLockScript));
}

static const char *
lock_name(LOCKMODE mode)
{
	switch (mode)
	{
		case AccessShareLock:
			return "ACCESS SHARE";
		case RowShareLock:
			return "ROW SHARE";
		case RowExclusiveLock:
			return "ROW EXCLUSIVE";
		case ShareUpdateExclusiveLock:
			return "SHARE UPDATE EXCLUSIVE";
		case ShareLock:
			return "SHARE";
		case ShareRowExclusiveLock:
			return "SHARE ROW EXCLUSIVE";
		case ExclusiveLock:
			return "EXCLUSIVE";
		default:
			return "ACCESS EXCLUSIVE";
	}
}

static const char *
statement_text(Ctx *ctx)
{
	if (ctx->text == NULL)
		ctx->text = rg_statement_text(ctx->query ? ctx->query : "", ctx->location, ctx->len);
	return ctx->text;
}

/*
 * Locks the relation as the statement will (the guard) or as
 * pg_relation_size does (the dry run: mode is NoLock), and measures it,
 * with its partitions or inheriting tables if recurse.  False if the user
 * may not alter it (the statement fails on its own: nothing to lock or
 * judge) or it is gone.
 */
static bool
measure(Ctx *ctx, Oid relid, bool recurse, LOCKMODE mode, Measure *m)
{
	List	   *rels;
	ListCell   *lc;
	bool		unknown_rows = false;

	if (ctx->script == NULL)
	{
		if (!rg_class_ownercheck(relid, GetUserId()))
			return false;
	}
	else
		mode = AccessShareLock;
	LockRelationOid(relid, mode);
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		return false;

	memset(m, 0, sizeof(Measure));
	rels = recurse ? find_all_inheritors(relid, mode, NULL) : list_make1_oid(relid);
	foreach(lc, rels)
	{
		Relation	rel = relation_open(lfirst_oid(lc), NoLock);

		if (lfirst_oid(lc) == relid)
			m->created_here = rel->rd_createSubid != InvalidSubTransactionId;
		if (RELKIND_HAS_STORAGE(rel->rd_rel->relkind))
		{
			BlockNumber nblocks = RelationGetNumberOfBlocks(rel);

			m->bytes += (int64) nblocks * BLCKSZ;
			if (rel->rd_rel->reltuples >= 0)
				m->rows += rel->rd_rel->reltuples;
			else if (nblocks > 0)
				unknown_rows = true;
		}
		relation_close(rel, NoLock);
	}
	if (unknown_rows)
		m->rows = -1;
	return true;
}

static bool
is_large(const Measure *m)
{
	return !m->created_here && m->bytes >= (int64) min_size_kb * 1024;
}

static char *
size_text(int64 bytes)
{
	return text_to_cstring(DatumGetTextPP(DirectFunctionCall1(pg_size_pretty,
															   Int64GetDatum(bytes))));
}

/* "512 MB, about 4000000 rows" */
static char *
measured_text(const Measure *m)
{
	if (m->rows < 0)
		return psprintf(_("%s, rows not counted yet"), size_text(m->bytes));
	return psprintf(_("%s, about %.0f rows"), size_text(m->bytes), m->rows);
}

/* The DETAIL's first sentence: what was measured, against what. */
static char *
threshold_text(Oid relid, const Measure *m)
{
	return psprintf(_("The table is %s: above rollguard.lock_checks_min_size (%s)."),
					measured_text(m), size_text((int64) min_size_kb * 1024));
}

static char *
qualified(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

static RgLockFinding *
add_finding(Ctx *ctx, const char *check, Oid relid, const char *attname,
			const Measure *m)
{
	RgLockFinding *f = palloc0(sizeof(RgLockFinding));

	f->check = check;
	f->relid = relid;
	f->nspname = get_namespace_name(get_rel_namespace(relid));
	f->relname = get_rel_name(relid);
	f->attname = attname ? pstrdup(attname) : NULL;
	if (m)
	{
		f->bytes = m->bytes;
		f->rows = m->rows;
	}
	else
		f->rows = -1;
	f->statement = statement_text(ctx);
	ctx->findings = lappend(ctx->findings, f);
	return f;
}

/*
 * The statement with a keyword inserted after the first token that is one
 * of the keywords given (CONCURRENTLY after INDEX), found with the core
 * scanner so that comments and quoted names do not confuse it; or NULL.
 */
#define KEYWORD_TOKEN 60000

static char *
insert_after_keyword(const char *stmt, const char *kw1, const char *kw2,
					 const char *insert)
{
	static uint16 *tokens = NULL;
	core_yy_extra_type yyextra;
	core_yyscan_t scanner;
	core_YYSTYPE yylval;
	YYLTYPE		yylloc;
	int			tok;
	char	   *result = NULL;

	if (tokens == NULL)
	{
		tokens = MemoryContextAlloc(TopMemoryContext,
									sizeof(uint16) * ScanKeywords.num_keywords);
		for (int i = 0; i < ScanKeywords.num_keywords; i++)
			tokens[i] = KEYWORD_TOKEN;
	}
	scanner = scanner_init(stmt, &yyextra, &ScanKeywords, tokens);
	while ((tok = core_yylex(&yylval, &yylloc, scanner)) != 0)
	{
		if (tok == KEYWORD_TOKEN &&
			(strcmp(yylval.keyword, kw1) == 0 || (kw2 && strcmp(yylval.keyword, kw2) == 0)))
		{
			int			end = yylloc + strlen(yylval.keyword);

			result = psprintf("%.*s %s%s", end, stmt, insert, stmt + end);
			break;
		}
	}
	scanner_finish(scanner);
	return result;
}

/*-------------------------------------------------------------------------
 * ACCESS EXCLUSIVE without lock_timeout
 *-------------------------------------------------------------------------
 */

/* Does this transaction hold this lock on the relation, or a stronger one? */
static LOCKMODE
strongest_held(Ctx *ctx, Oid relid)
{
	LOCKTAG		tag;
	LOCKMODE	mode;

	if (ctx->script)
	{
		LOCKMODE	best = NoLock;
		ListCell   *lc;

		foreach(lc, ctx->script->locked)
		{
			LockedRel  *l = lfirst(lc);

			if (l->relid == relid && l->mode > best)
				best = l->mode;
		}
		return best;
	}
	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
	for (mode = AccessExclusiveLock; mode > NoLock; mode--)
		if (LOCK_HELD_BY_ME(&tag, mode))
			return mode;
	return NoLock;
}

/* Does this transaction hold ACCESS EXCLUSIVE lock on the relation? */
static bool
holds_access_exclusive(Ctx *ctx, Oid relid)
{
	LOCKTAG		tag;

	if (ctx->script)
		return strongest_held(ctx, relid) == AccessExclusiveLock;
	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
	return LOCK_HELD_BY_ME(&tag, AccessExclusiveLock);
}

static bool
lock_timeout_in_force(Ctx *ctx)
{
	if (ctx->script && ctx->script->lock_timeout_known)
		return ctx->script->lock_timeout_on;
	return LockTimeout > 0;
}

/*
 * The statement will ask for ACCESS EXCLUSIVE lock on relid: with no
 * lock_timeout, while other sessions hold a lock on it, it would wait as
 * long as they run, and every query on the table after it waits behind it.
 * Looked at before the statement waits for anything; true if so (the
 * caller then stops there: measuring the table would mean waiting for the
 * lock).
 */
static bool
check_lock_timeout(Ctx *ctx, Oid relid, const char *command)
{
	LOCKTAG		tag;
	VirtualTransactionId *vxids;
	int			n = 0;
	RgLockFinding *f;

	if (lock_timeout_in_force(ctx) || holds_access_exclusive(ctx, relid))
		return false;

	/*
	 * The statement takes this very lock next.  Taken now, when no other
	 * session holds a lock on the table, it answers the question without a
	 * second scan of every backend's fast-path locks, and the statement
	 * then finds it held: the cost is moved, not added.  Only for the
	 * table's owner (who may take it anyway), never in a dry run.
	 */
	if (ctx->script == NULL && rg_class_ownercheck(relid, GetUserId()) &&
		ConditionalLockRelationOid(relid, AccessExclusiveLock))
		return false;

	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
	vxids = GetLockConflicts(&tag, AccessExclusiveLock, &n);
	pfree(vxids);
	if (n == 0)
		return false;

	f = add_finding(ctx, "lock without timeout", relid, NULL, NULL);
	f->message = psprintf(ngettext("%s would queue every query on table \"%s.%s\" behind %d other session holding a lock on it",
								   "%s would queue every query on table \"%s.%s\" behind %d other sessions holding a lock on it",
								   n),
						  command, f->nspname, f->relname, n);
	f->detail = psprintf(ngettext("lock_timeout is 0 in this session, and %d other session holds a lock on the table now (pg_locks lists it): %s waits for ACCESS EXCLUSIVE lock as long as it runs, and every query on the table that comes after waits behind the request.",
								  "lock_timeout is 0 in this session, and %d other sessions hold a lock on the table now (pg_locks lists them): %s waits for ACCESS EXCLUSIVE lock as long as they run, and every query on the table that comes after waits behind the request.",
								  n),
						 n, command);
	f->hint = pstrdup(_("Give up quickly instead of stalling the table, and retry the migration later:\n"
						"SET lock_timeout = '5s';\n"
						"(Django: \"OPTIONS\": {\"options\": \"-c lock_timeout=5s\"} for the migration's connection; "
						"Rails: strong_migrations' lock_timeout, or SET lock_timeout in the migration.)"));
	return true;
}

/*-------------------------------------------------------------------------
 * ALTER TABLE
 *-------------------------------------------------------------------------
 */

/* Would PostgreSQL rewrite the table to change column attnum to this type? */
static bool
type_change_rewrites(Relation rel, AttrNumber attnum, ColumnDef *def,
					 Oid *newtype, int32 *newtypmod)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	Type		tup;
	Node	   *expr;
	Node	   *using = def->raw_default;

	tup = LookupTypeName(NULL, def->typeName, newtypmod, true);
	if (tup == NULL)
		return false;			/* the statement fails on its own */
	*newtype = ((Form_pg_type) GETSTRUCT(tup))->oid;
	ReleaseSysCache(tup);

	/*
	 * USING that only names the column, or casts it to the new type
	 * (Django's USING "c"::bigint), is the implicit conversion; any other
	 * expression rewrites.
	 */
	if (using && IsA(using, TypeCast))
	{
		Oid			casttype;
		int32		casttypmod;

		tup = LookupTypeName(NULL, ((TypeCast *) using)->typeName, &casttypmod, true);
		if (tup == NULL)
			return false;		/* the statement fails on its own */
		casttype = ((Form_pg_type) GETSTRUCT(tup))->oid;
		ReleaseSysCache(tup);
		if (casttype != *newtype)
			return true;
		using = ((TypeCast *) using)->arg;
	}
	if (using)
	{
		ColumnRef  *cr = (ColumnRef *) using;

		if (!IsA(using, ColumnRef) ||
			strcmp(strVal(llast(cr->fields)), NameStr(att->attname)) != 0)
			return true;
	}

	/* as ATPrepAlterColumnType and ATColumnChangeRequiresRewrite decide */
	expr = (Node *) makeVar(1, attnum, att->atttypid, att->atttypmod,
							att->attcollation, 0);
	expr = coerce_to_target_type(NULL, expr, att->atttypid, *newtype, *newtypmod,
								 COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST, -1);
	if (expr == NULL)			/* an explicit cast in USING, or none: the
								 * statement rewrites, or fails */
		return def->raw_default != NULL;
	expr = eval_const_expressions(NULL, expr);
	for (;;)
	{
		if (IsA(expr, Var) && ((Var *) expr)->varattno == attnum)
			return false;
		else if (IsA(expr, RelabelType))
			expr = (Node *) ((RelabelType *) expr)->arg;
		else if (IsA(expr, CoerceToDomain))
		{
			if (DomainHasConstraints(((CoerceToDomain *) expr)->resulttype))
				return true;
			expr = (Node *) ((CoerceToDomain *) expr)->arg;
		}
		else if (IsA(expr, FuncExpr) &&
				 (((FuncExpr *) expr)->funcid == F_TIMESTAMPTZ_TIMESTAMP ||
				  ((FuncExpr *) expr)->funcid == F_TIMESTAMP_TIMESTAMPTZ) &&
				 !TimestampTimestampTzRequiresRewrite())
			expr = linitial(((FuncExpr *) expr)->args);
		else
			return true;
	}
}

/* A default cooked in a subtransaction: a broken one fails the statement. */
typedef struct Cook
{
	Node	   *raw;
	Oid			typid;
	int32		typmod;
	const char *attname;
	Node	   *cooked;
} Cook;

static bool
cook_default(Cook *c)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		c->cooked = cookDefault(make_parsestate(NULL), copyObject(c->raw),
								c->typid, c->typmod, c->attname, '\0');
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return ok;
}

static bool
is_serial(TypeName *tn)
{
	const char *name;

	if (tn == NULL || list_length(tn->names) != 1 || tn->arrayBounds != NIL)
		return false;
	name = strVal(linitial(tn->names));
	return strcmp(name, "serial") == 0 || strcmp(name, "bigserial") == 0 ||
		strcmp(name, "smallserial") == 0 || strcmp(name, "serial2") == 0 ||
		strcmp(name, "serial4") == 0 || strcmp(name, "serial8") == 0;
}

/*
 * ADD COLUMN: why PostgreSQL would rewrite the table for it (as
 * ATExecAddColumn decides), or NULL; *safe gets the safe form.
 */
static char *
add_column_rewrites(Oid relid, ColumnDef *def, char **safe)
{
	const char *t = qualified(relid);
	const char *c = quote_identifier(def->colname);
	Node	   *raw_default = NULL;
	Type		tup;
	Oid			typid = InvalidOid;
	int32		typmod = -1;
	ListCell   *lc;

	if (!is_serial(def->typeName))
	{
		tup = LookupTypeName(NULL, def->typeName, &typmod, true);
		if (tup == NULL)
			return NULL;		/* the statement fails on its own */
		typid = ((Form_pg_type) GETSTRUCT(tup))->oid;
		ReleaseSysCache(tup);
	}

	foreach(lc, def->constraints)
	{
		Constraint *con = lfirst(lc);

		if (con->contype == CONSTR_IDENTITY)
		{
			*safe = psprintf("ALTER TABLE %s ADD COLUMN %s bigint;\n"
							 "CREATE SEQUENCE %s OWNED BY %s.%s;\n"
							 "ALTER TABLE %s ALTER COLUMN %s SET DEFAULT nextval('%s');\n"
							 "UPDATE %s SET %s = nextval('%s') WHERE %s IS NULL;  -- in batches, by primary key",
							 t, c,
							 quote_identifier(psprintf("%s_%s_seq", get_rel_name(relid), def->colname)), t, c,
							 t, c, psprintf("%s_%s_seq", get_rel_name(relid), def->colname),
							 t, c, psprintf("%s_%s_seq", get_rel_name(relid), def->colname), c);
			return psprintf(_("Adding identity column \"%s\""), def->colname);
		}
		if (con->contype == CONSTR_GENERATED)
		{
			*safe = psprintf("ALTER TABLE %s ADD COLUMN %s %s;  -- a plain column, filled by the code or a trigger\n"
							 "UPDATE %s SET %s = ... WHERE %s IS NULL;  -- in batches, by primary key",
							 t, c, format_type_with_typemod(typid, typmod), t, c, c);
			return psprintf(_("Adding stored generated column \"%s\""), def->colname);
		}
		if (con->contype == CONSTR_DEFAULT)
			raw_default = con->raw_expr;
	}
	if (is_serial(def->typeName))
	{
		*safe = psprintf("ALTER TABLE %s ADD COLUMN %s %s;\n"
						 "CREATE SEQUENCE %s OWNED BY %s.%s;\n"
						 "ALTER TABLE %s ALTER COLUMN %s SET DEFAULT nextval('%s');\n"
						 "UPDATE %s SET %s = nextval('%s') WHERE %s IS NULL;  -- in batches, by primary key",
						 t, c, strstr(strVal(linitial(def->typeName->names)), "big") ||
						 strcmp(strVal(linitial(def->typeName->names)), "serial8") == 0 ? "bigint" : "integer",
						 quote_identifier(psprintf("%s_%s_seq", get_rel_name(relid), def->colname)), t, c,
						 t, c, psprintf("%s_%s_seq", get_rel_name(relid), def->colname),
						 t, c, psprintf("%s_%s_seq", get_rel_name(relid), def->colname), c);
		return psprintf(_("Adding serial column \"%s\" (its default, nextval(), is volatile)"),
						def->colname);
	}
	if (raw_default != NULL)
	{
		Cook		cook = {raw_default, typid, typmod, def->colname, NULL};

		if (!cook_default(&cook) || !contain_volatile_functions(cook.cooked))
			return NULL;
		*safe = psprintf("ALTER TABLE %s ADD COLUMN %s %s;\n"
						 "ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s;\n"
						 "UPDATE %s SET %s = %s WHERE %s IS NULL;  -- in batches, by primary key",
						 t, c, format_type_with_typemod(typid, typmod),
						 t, c, deparse_expression(cook.cooked, NIL, false, false),
						 t, c, deparse_expression(cook.cooked, NIL, false, false), c);
		return psprintf(_("Adding column \"%s\" with a volatile default"), def->colname);
	}
	if (get_typtype(typid) == TYPTYPE_DOMAIN && DomainHasConstraints(typid))
	{
		*safe = psprintf(_("Add the column with the domain's base type, and change it to the domain once the table's rows are checked (or in a maintenance window)."));
		return psprintf(_("Adding column \"%s\" of a domain with constraints"), def->colname);
	}
	return NULL;
}

/* Does a valid CHECK constraint (or the partition bound) prove the column NOT NULL? */
static bool
not_null_proven(Relation rel, AttrNumber attnum)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	NullTest   *nt = makeNode(NullTest);

	nt->arg = (Expr *) makeVar(1, attnum, att->atttypid, att->atttypmod,
							   att->attcollation, 0);
	nt->nulltesttype = IS_NOT_NULL;
	nt->argisrow = false;
	nt->location = -1;
	return PartConstraintImpliedByRelConstraint(rel, list_make1(nt));
}

/* The name PostgreSQL gives an unnamed foreign key or check. */
static char *
constraint_name(Oid relid, Constraint *con)
{
	StringInfoData cols;
	ListCell   *lc;

	if (con->conname)
		return con->conname;
	initStringInfo(&cols);
	if (con->contype == CONSTR_FOREIGN)
	{
		foreach(lc, con->fk_attrs)
		{
			if (cols.len > 0)
				appendStringInfoChar(&cols, '_');
			appendStringInfoString(&cols, strVal(lfirst(lc)));
		}
		return ChooseConstraintName(get_rel_name(relid), cols.data, "fkey",
									get_rel_namespace(relid), NIL);
	}
	if (con->contype == CONSTR_CHECK && con->raw_expr && IsA(con->raw_expr, ColumnRef))
		appendStringInfoString(&cols, strVal(llast(((ColumnRef *) con->raw_expr)->fields)));
	else if (con->contype == CONSTR_CHECK && con->raw_expr && IsA(con->raw_expr, NullTest) &&
			 IsA(((NullTest *) con->raw_expr)->arg, ColumnRef))
		appendStringInfoString(&cols,
							   strVal(llast(((ColumnRef *) ((NullTest *) con->raw_expr)->arg)->fields)));
	else if (con->contype == CONSTR_CHECK && con->raw_expr && IsA(con->raw_expr, A_Expr) &&
			 ((A_Expr *) con->raw_expr)->lexpr && IsA(((A_Expr *) con->raw_expr)->lexpr, ColumnRef))
		appendStringInfoString(&cols,
							   strVal(llast(((ColumnRef *) ((A_Expr *) con->raw_expr)->lexpr)->fields)));
	return ChooseConstraintName(get_rel_name(relid), cols.len > 0 ? cols.data : NULL,
								"check", get_rel_namespace(relid), NIL);
}

/* "ALTER TABLE t ADD CONSTRAINT ... NOT VALID", as exact as we can write it */
static char *
not_valid_form(Ctx *ctx, AlterTableStmt *stmt, Oid relid, Constraint *con,
			   const char *name)
{
	if (list_length(stmt->cmds) == 1 && con->conname != NULL)
		return psprintf("%s NOT VALID;", statement_text(ctx));
	if (list_length(stmt->cmds) == 1)
	{
		/* named, so that the VALIDATE can name it */
		char	   *named = insert_after_keyword(statement_text(ctx), "add", NULL,
												 psprintf("CONSTRAINT %s", quote_identifier(name)));

		if (named)
			return psprintf("%s NOT VALID;", named);
	}
	return psprintf("ALTER TABLE %s ADD CONSTRAINT %s %s ... NOT VALID;  -- the constraint as above, named",
					qualified(relid), quote_identifier(name),
					con->contype == CONSTR_FOREIGN ? "FOREIGN KEY" : "CHECK");
}

static char *
join_names(List *names, const char *sep, bool quote)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, sep);
		appendStringInfoString(&buf, quote ? quote_identifier(strVal(lfirst(lc))) : strVal(lfirst(lc)));
	}
	return buf.data;
}

/* ADD PRIMARY KEY / UNIQUE that builds its index under the table's lock. */
static void
check_index_constraint(Ctx *ctx, Oid relid, Constraint *con, const Measure *m)
{
	const char *t = qualified(relid);
	bool		pk = con->contype == CONSTR_PRIMARY;
	char	   *name;
	RgLockFinding *f;

	if (con->indexname != NULL || con->keys == NIL)
		return;					/* USING INDEX: the safe form */
	name = con->conname ? con->conname :
		ChooseRelationName(get_rel_name(relid), pk ? NULL : join_names(con->keys, "_", false),
						   pk ? "pkey" : "key", get_rel_namespace(relid), true);
	f = add_finding(ctx, pk ? "primary key index build" : "unique index build", relid, NULL, m);
	f->message = psprintf(pk ? _("adding primary key \"%s\" would block reads and writes of table \"%s.%s\" (%s) while it builds its index")
						  : _("adding unique constraint \"%s\" would block reads and writes of table \"%s.%s\" (%s) while it builds its index"),
						  name, f->nspname, f->relname, measured_text(m));
	f->detail = psprintf("%s %s", threshold_text(relid, m),
						 _("ADD PRIMARY KEY and ADD UNIQUE build the index while they hold ACCESS EXCLUSIVE lock on the table."));
	f->hint = psprintf(_("Build the index concurrently, outside a transaction block, then attach it, which holds the lock only for a moment:\n"
						 "CREATE UNIQUE INDEX CONCURRENTLY %s ON %s (%s);\n"
						 "ALTER TABLE %s ADD CONSTRAINT %s %s USING INDEX %s;%s"),
					   quote_identifier(name), t, join_names(con->keys, ", ", true),
					   t, quote_identifier(name), pk ? "PRIMARY KEY" : "UNIQUE", quote_identifier(name),
					   pk ? _("\nThe key's columns must be NOT NULL already, or ADD PRIMARY KEY scans the table for NULLs: see SET NOT NULL.") : "");
}

/* ADD FOREIGN KEY / CHECK without NOT VALID (a constraint or a column's) */
static void
check_validated_constraint(Ctx *ctx, AlterTableStmt *stmt, Oid relid,
						   Constraint *con, const Measure *m, bool inline_column)
{
	const char *t = qualified(relid);
	char	   *name;
	RgLockFinding *f;

	if (con->skip_validation)
		return;					/* NOT VALID */
	name = constraint_name(relid, con);
	if (con->contype == CONSTR_FOREIGN)
	{
		f = add_finding(ctx, "foreign key validation", relid, NULL, m);
		f->message = psprintf(_("adding foreign key \"%s\" would block writes to table \"%s.%s\" (%s) while it checks every row"),
							  name, f->nspname, f->relname, measured_text(m));
		f->detail = psprintf(_("%s Without NOT VALID, PostgreSQL checks every existing row while it holds SHARE ROW EXCLUSIVE lock on the table and on the referenced table \"%s\"."),
							 threshold_text(relid, m), con->pktable->relname);
	}
	else
	{
		f = add_finding(ctx, "check validation", relid, NULL, m);
		f->message = psprintf(_("adding check constraint \"%s\" would block reads and writes of table \"%s.%s\" (%s) while it checks every row"),
							  name, f->nspname, f->relname, measured_text(m));
		f->detail = psprintf(_("%s Without NOT VALID, PostgreSQL checks every existing row while it holds ACCESS EXCLUSIVE lock on the table."),
							 threshold_text(relid, m));
	}
	if (inline_column)
		f->hint = psprintf(_("Add the column first, then the constraint NOT VALID (new rows are checked at once), and validate it in a later transaction, which lets reads and writes go on:\n"
							 "ALTER TABLE %s ADD CONSTRAINT %s %s ... NOT VALID;\n"
							 "ALTER TABLE %s VALIDATE CONSTRAINT %s;  -- in a later transaction"),
						   t, quote_identifier(name),
						   con->contype == CONSTR_FOREIGN ? "FOREIGN KEY" : "CHECK",
						   t, quote_identifier(name));
	else
		f->hint = psprintf(_("Add it NOT VALID (new rows are checked at once), and validate it in a later transaction, which lets reads and writes go on:\n"
							 "%s\n"
							 "ALTER TABLE %s VALIDATE CONSTRAINT %s;  -- in a later transaction"),
						   not_valid_form(ctx, stmt, relid, con, name),
						   t, quote_identifier(name));
}

/* Is the constraint there and already valid (VALIDATE does nothing)? */
static bool
constraint_valid(Oid relid, const char *name)
{
	Oid			conoid = get_relation_constraint_oid(relid, name, true);
	HeapTuple	tup;
	bool		valid;

	if (!OidIsValid(conoid))
		return false;
	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (!HeapTupleIsValid(tup))
		return false;
	valid = ((Form_pg_constraint) GETSTRUCT(tup))->convalidated;
	ReleaseSysCache(tup);
	return valid;
}

/* Which of a statement's subcommands may need the table measured? */
static bool
alter_cmd_concerned(AlterTableCmd *cmd)
{
	switch (cmd->subtype)
	{
		case AT_AddColumn:
		case AT_AlterColumnType:
		case AT_SetNotNull:
		case AT_AddConstraint:
		case AT_ValidateConstraint:
		case AT_SetLogged:
		case AT_SetUnLogged:
		case AT_SetTableSpace:
#if PG_VERSION_NUM >= 150000
		case AT_SetAccessMethod:
#endif
			return true;
		case AT_DetachPartition:
			return !((PartitionCmd *) cmd->def)->concurrent;
		default:
			return false;
	}
}

static void
rewrite_finding(Ctx *ctx, Oid relid, const char *attname, const Measure *m,
				const char *cause, const char *safe)
{
	RgLockFinding *f = add_finding(ctx, "table rewrite", relid, attname, m);

	f->message = psprintf(_("ALTER TABLE would rewrite table \"%s.%s\" (%s) while it blocks its reads and writes"),
						  f->nspname, f->relname, measured_text(m));
	f->detail = psprintf(_("%s %s makes PostgreSQL rewrite every row while it holds ACCESS EXCLUSIVE lock on the table."),
						 threshold_text(relid, m), cause);
	f->hint = pstrdup(safe);
}

static void
check_alter_table(Ctx *ctx, AlterTableStmt *stmt)
{
	Oid			relid;
	char		relkind;
	LOCKMODE	lockmode;
	bool		concerned = false;
	Measure		m;
	Relation	rel;
	ListCell   *lc;
	const char *t;
	LOCKMODE	held;

	if (stmt->objtype != OBJECT_TABLE)
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return;
	if (!rg_relation_is_guarded(relid, &relkind) ||
		(relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE))
		return;
	if (ctx->script == NULL && !rg_class_ownercheck(relid, GetUserId()))
		return;
	lockmode = AlterTableGetLockLevel(stmt->cmds);

	/* the lock held before the statement: VALIDATE CONSTRAINT's finding */
	held = NoLock;
	foreach(lc, stmt->cmds)
	{
		if (((AlterTableCmd *) lfirst(lc))->subtype == AT_ValidateConstraint)
		{
			held = strongest_held(ctx, relid);
			break;
		}
	}

	/*
	 * Before anything is locked: would the request queue the table?  If so,
	 * that is the finding (measuring the table would mean waiting).
	 */
	if (lockmode != AccessExclusiveLock || !check_lock_timeout(ctx, relid, "ALTER TABLE"))
	{
		foreach(lc, stmt->cmds)
			concerned |= alter_cmd_concerned(lfirst(lc));
	}

	/* the dry run: the script holds this lock from now on */
	if (ctx->script)
	{
		LockedRel  *l = palloc(sizeof(LockedRel));

		l->relid = relid;
		l->mode = lockmode;
		ctx->script->locked = lappend(ctx->script->locked, l);
	}

	if (!concerned)
		return;
	if (!measure(ctx, relid, stmt->relation->inh, lockmode, &m) || !is_large(&m))
		return;

	t = qualified(relid);
	rel = relation_open(relid, NoLock);
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);

		switch (cmd->subtype)
		{
			case AT_AddColumn:
				{
					ColumnDef  *def = (ColumnDef *) cmd->def;
					char	   *safe = NULL;
					char	   *cause = add_column_rewrites(relid, def, &safe);
					ListCell   *cc;

					if (cause)
						rewrite_finding(ctx, relid, def->colname, &m, cause,
										psprintf(_("Add the column without a rewrite, and fill it in batches:\n%s"), safe));
					foreach(cc, def->constraints)
					{
						Constraint *con = lfirst(cc);

						if (con->contype == CONSTR_PRIMARY || con->contype == CONSTR_UNIQUE)
						{
							Constraint *c2 = copyObject(con);

							c2->keys = list_make1(makeString(def->colname));
							check_index_constraint(ctx, relid, c2, &m);
						}
						else if (con->contype == CONSTR_FOREIGN)
						{
							Constraint *c2 = copyObject(con);

							c2->fk_attrs = list_make1(makeString(def->colname));
							check_validated_constraint(ctx, stmt, relid, c2, &m, true);
						}
						else if (con->contype == CONSTR_CHECK)
							check_validated_constraint(ctx, stmt, relid, con, &m, true);
					}
					break;
				}
			case AT_AlterColumnType:
				{
					ColumnDef  *def = (ColumnDef *) cmd->def;
					AttrNumber	attnum = get_attnum(relid, cmd->name);
					Oid			newtype;
					int32		newtypmod;

					if (attnum <= 0 ||
						!type_change_rewrites(rel, attnum, def, &newtype, &newtypmod))
						break;
					{
						const char *c = quote_identifier(cmd->name);
						const char *nc = quote_identifier(psprintf("%s_new", cmd->name));
						const char *typ = format_type_with_typemod(newtype, newtypmod);

						rewrite_finding(ctx, relid, cmd->name, &m,
										psprintf(_("Changing the type of column \"%s\" to %s"), cmd->name, typ),
										psprintf(_("Change it without a rewrite: add a column of the new type, keep both written, backfill, and switch over in later releases:\n"
												   "ALTER TABLE %s ADD COLUMN %s %s;\n"
												   "UPDATE %s SET %s = %s::%s WHERE %s IS NULL;  -- in batches, by primary key, once the code writes both\n"
												   "then move the code to %s, and drop %s in a later release."),
												 t, nc, typ, t, nc, c, typ, nc, nc, c));
					}
					break;
				}
			case AT_SetLogged:
			case AT_SetUnLogged:
			case AT_SetTableSpace:
#if PG_VERSION_NUM >= 150000
			case AT_SetAccessMethod:
#endif
				{
					const char *what =
						cmd->subtype == AT_SetLogged ? "SET LOGGED" :
						cmd->subtype == AT_SetUnLogged ? "SET UNLOGGED" :
						cmd->subtype == AT_SetTableSpace ? "SET TABLESPACE" : "SET ACCESS METHOD";

					rewrite_finding(ctx, relid, NULL, &m, what,
									psprintf(_("PostgreSQL has no online form of %s: run it in a maintenance window, or rebuild the table online with pg_repack (pg_repack --table=%s%s)."),
											 what, t,
											 cmd->subtype == AT_SetTableSpace ? psprintf(" --tablespace=%s", cmd->name) : ""));
					break;
				}
			case AT_SetNotNull:
				{
					AttrNumber	attnum = get_attnum(relid, cmd->name);
					RgLockFinding *f;
					const char *c = quote_identifier(cmd->name);
					const char *cn = quote_identifier(psprintf("%s_%s_not_null", get_rel_name(relid), cmd->name));

					if (attnum <= 0 || TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attnotnull ||
						not_null_proven(rel, attnum))
						break;
					f = add_finding(ctx, "not null scan", relid, cmd->name, &m);
					f->message = psprintf(_("SET NOT NULL on column \"%s\" would block reads and writes of table \"%s.%s\" (%s) while it checks every row"),
										  cmd->name, f->nspname, f->relname, measured_text(&m));
					f->detail = psprintf(_("%s No valid CHECK constraint proves that \"%s\" is never NULL, so PostgreSQL checks every row while it holds ACCESS EXCLUSIVE lock on the table."),
										 threshold_text(relid, &m), cmd->name);
					f->hint = psprintf(_("Prove it first with a CHECK constraint validated in a transaction of its own; SET NOT NULL then skips the scan:\n"
										 "ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID;\n"
										 "ALTER TABLE %s VALIDATE CONSTRAINT %s;  -- in a later transaction\n"
										 "ALTER TABLE %s ALTER COLUMN %s SET NOT NULL;\n"
										 "ALTER TABLE %s DROP CONSTRAINT %s;"),
									   t, cn, c, t, cn, t, c, t, cn);
					break;
				}
			case AT_AddConstraint:
				{
					Constraint *con = (Constraint *) cmd->def;

					if (con->contype == CONSTR_PRIMARY || con->contype == CONSTR_UNIQUE)
						check_index_constraint(ctx, relid, con, &m);
					else if (con->contype == CONSTR_FOREIGN || con->contype == CONSTR_CHECK)
						check_validated_constraint(ctx, stmt, relid, con, &m, false);
					break;
				}
			case AT_ValidateConstraint:
				{
					RgLockFinding *f;

					if (held < ShareLock || constraint_valid(relid, cmd->name))
						break;
					f = add_finding(ctx, "validation under a strong lock", relid, NULL, &m);
					f->message = psprintf(_("validating constraint \"%s\" would block %s table \"%s.%s\" (%s) while it checks every row"),
										  cmd->name,
										  held == ShareLock || held == ShareRowExclusiveLock ? _("writes to") : _("reads and writes of"),
										  f->nspname, f->relname, measured_text(&m));
					f->detail = psprintf(_("%s This transaction already holds %s lock on the table (an earlier statement took it: the NOT VALID add, say) and keeps it while VALIDATE CONSTRAINT checks every row; alone, VALIDATE takes SHARE UPDATE EXCLUSIVE, which lets reads and writes go on."),
										 threshold_text(relid, &m), lock_name(held));
					f->hint = psprintf(_("Commit first, and validate in a transaction of its own (in Django, a migration of its own):\n"
										 "COMMIT;\n"
										 "ALTER TABLE %s VALIDATE CONSTRAINT %s;"),
									   t, quote_identifier(cmd->name));
					break;
				}
			case AT_DetachPartition:
				{
					PartitionCmd *pc = (PartitionCmd *) cmd->def;
					Oid			part = RangeVarGetRelid(pc->name, NoLock, true);
					RgLockFinding *f;
					char	   *safe;

					if (pc->concurrent || !OidIsValid(part))
						break;
					/* no concurrent form while a default partition exists */
					if (OidIsValid(get_default_partition_oid(relid)))
						break;
					safe = list_length(stmt->cmds) == 1
						? psprintf("%s CONCURRENTLY;", statement_text(ctx))
						: psprintf("ALTER TABLE %s DETACH PARTITION %s CONCURRENTLY;", t, qualified(part));
					f = add_finding(ctx, "partition detach", relid, NULL, &m);
					f->message = psprintf(_("DETACH PARTITION without CONCURRENTLY would block reads and writes of table \"%s.%s\" (%s) while it waits for running queries"),
										  f->nspname, f->relname, measured_text(&m));
					f->detail = psprintf(_("%s It takes ACCESS EXCLUSIVE lock on the partitioned table, not only on partition \"%s\"."),
										 threshold_text(relid, &m), get_rel_name(part));
					f->hint = psprintf(_("Detach it concurrently, in a statement of its own outside a transaction block: it waits for running queries instead of blocking new ones:\n%s"),
									   safe);
					break;
				}
			default:
				break;
		}
	}
	relation_close(rel, NoLock);
}

/*-------------------------------------------------------------------------
 * Indexes, VACUUM FULL, CLUSTER
 *-------------------------------------------------------------------------
 */

static const char *
index_tools_hint(void)
{
	return _("Django: AddIndexConcurrently (django.contrib.postgres.operations) in a migration with atomic = False; Rails: algorithm: :concurrently with disable_ddl_transaction!.");
}

static void
check_create_index(Ctx *ctx, IndexStmt *stmt)
{
	Oid			relid;
	char		relkind;
	Measure		m;
	RgLockFinding *f;
	char	   *safe;

	if (stmt->concurrent)
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return;
	if (!rg_relation_is_guarded(relid, &relkind) ||
		(relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		 relkind != RELKIND_MATVIEW))
		return;
	if (stmt->if_not_exists && stmt->idxname &&
		OidIsValid(get_relname_relid(stmt->idxname, get_rel_namespace(relid))))
		return;					/* nothing to build */
	if (!measure(ctx, relid, stmt->relation->inh, ShareLock, &m) || !is_large(&m))
		return;

	f = add_finding(ctx, "index build", relid, NULL, &m);
	f->message = stmt->idxname
		? psprintf(_("CREATE INDEX without CONCURRENTLY would block writes to table \"%s.%s\" (%s) while it builds index \"%s\""),
				   f->nspname, f->relname, measured_text(&m), stmt->idxname)
		: psprintf(_("CREATE INDEX without CONCURRENTLY would block writes to table \"%s.%s\" (%s) while it builds the index"),
				   f->nspname, f->relname, measured_text(&m));
	f->detail = psprintf(_("%s CREATE INDEX holds SHARE lock on the table, which blocks INSERT, UPDATE and DELETE, until the index is built."),
						 threshold_text(relid, &m));
	if (relkind == RELKIND_PARTITIONED_TABLE)
		f->hint = psprintf(_("A partitioned table's index cannot be built concurrently at once; build it partition by partition:\n"
							 "CREATE INDEX %s ON ONLY %s (...);  -- the parent's index, invalid until every partition has one\n"
							 "CREATE INDEX CONCURRENTLY ... ON <partition> (...);  -- for each partition, outside a transaction block\n"
							 "ALTER INDEX %s ATTACH PARTITION <partition's index>;  -- for each; the parent's index is then valid"),
						   stmt->idxname ? quote_identifier(stmt->idxname) : "name",
						   qualified(relid),
						   stmt->idxname ? quote_identifier(stmt->idxname) : "name");
	else
	{
		safe = insert_after_keyword(f->statement, "index", NULL, "CONCURRENTLY");
		f->hint = psprintf(_("Build it concurrently, in a statement of its own outside a transaction block: it waits for running transactions instead of blocking writes (if it fails, drop the invalid index and run it again):\n%s;\n%s"),
						   safe ? safe : "CREATE INDEX CONCURRENTLY ...", index_tools_hint());
	}
}

static void
check_drop_index(Ctx *ctx, DropStmt *stmt)
{
	ListCell   *lc;

	if (stmt->removeType != OBJECT_INDEX || stmt->concurrent)
		return;
	foreach(lc, stmt->objects)
	{
		RangeVar   *rv = makeRangeVarFromNameList(lfirst(lc));
		Oid			indexid = RangeVarGetRelid(rv, NoLock, true);
		Oid			heapid;
		Measure		m;
		RgLockFinding *f;
		Relation	irel;
		bool		new_index;

		if (!OidIsValid(indexid) || get_rel_relkind(indexid) != RELKIND_INDEX)
			continue;			/* a partitioned index has no concurrent drop */
		heapid = IndexGetRelation(indexid, true);
		if (!OidIsValid(heapid) || !rg_relation_is_guarded(heapid, NULL))
			continue;
		if (ctx->script == NULL && !rg_class_ownercheck(heapid, GetUserId()))
			continue;
		if (check_lock_timeout(ctx, heapid, "DROP INDEX"))
			continue;
		if (!measure(ctx, heapid, false, AccessExclusiveLock, &m) || !is_large(&m))
			continue;
		/* as the statement: the table, then the index */
		LockRelationOid(indexid, ctx->script ? AccessShareLock : AccessExclusiveLock);
		irel = relation_open(indexid, NoLock);
		new_index = irel->rd_createSubid != InvalidSubTransactionId;
		relation_close(irel, NoLock);
		if (new_index)
			continue;

		f = add_finding(ctx, "index drop", heapid, NULL, &m);
		f->message = psprintf(_("DROP INDEX without CONCURRENTLY would block reads and writes of table \"%s.%s\" (%s) while it waits for running queries"),
							  f->nspname, f->relname, measured_text(&m));
		f->detail = psprintf(_("%s DROP INDEX takes ACCESS EXCLUSIVE lock on the table of index \"%s\"."),
							 threshold_text(heapid, &m), get_rel_name(indexid));
		f->hint = psprintf(_("Drop it concurrently, one index per statement, outside a transaction block:\n"
							 "DROP INDEX CONCURRENTLY %s%s;\n%s"),
						   stmt->missing_ok ? "IF EXISTS " : "", qualified(indexid),
						   _("Django: RemoveIndexConcurrently in a migration with atomic = False; Rails: algorithm: :concurrently with disable_ddl_transaction!."));
	}
}

static void
check_reindex(Ctx *ctx, ReindexStmt *stmt)
{
	Oid			relid;
	Oid			heapid;
	Measure		m;
	RgLockFinding *f;
	ListCell   *lc;
	char	   *safe;

	if (stmt->kind != REINDEX_OBJECT_INDEX && stmt->kind != REINDEX_OBJECT_TABLE)
		return;
	foreach(lc, stmt->params)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "concurrently") == 0 && defGetBoolean(opt))
			return;
	}
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return;
	if (stmt->kind == REINDEX_OBJECT_INDEX)
	{
		if (get_rel_relkind(relid) != RELKIND_INDEX)
			return;
		heapid = IndexGetRelation(relid, true);
	}
	else
		heapid = relid;
	if (!OidIsValid(heapid) || !rg_relation_is_guarded(heapid, NULL) ||
		(get_rel_relkind(heapid) != RELKIND_RELATION && get_rel_relkind(heapid) != RELKIND_MATVIEW))
		return;
	if (!measure(ctx, heapid, false, ShareLock, &m) || !is_large(&m))
		return;

	f = add_finding(ctx, "reindex", heapid, NULL, &m);
	f->message = psprintf(_("REINDEX without CONCURRENTLY would block writes to table \"%s.%s\" (%s), and reads through the index, while it rebuilds"),
						  f->nspname, f->relname, measured_text(&m));
	f->detail = psprintf(_("%s REINDEX holds SHARE lock on the table and ACCESS EXCLUSIVE lock on each index it rebuilds."),
						 threshold_text(heapid, &m));
	safe = insert_after_keyword(f->statement, "index", "table", "CONCURRENTLY");
	f->hint = psprintf(_("Rebuild it concurrently, outside a transaction block:\n%s;"),
					   safe ? safe : "REINDEX ... CONCURRENTLY ...");
}

static void
check_rewrite_command(Ctx *ctx, RangeVar *rv, const char *command, const char *repack)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);
	char		relkind;
	Measure		m;
	RgLockFinding *f;

	if (!OidIsValid(relid))
		return;
	if (!rg_relation_is_guarded(relid, &relkind) ||
		(relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW &&
		 relkind != RELKIND_PARTITIONED_TABLE))
		return;
	if (ctx->script == NULL && !rg_class_ownercheck(relid, GetUserId()))
		return;
	if (check_lock_timeout(ctx, relid, command))
		return;

	/*
	 * VACUUM commits the transaction it was called in before it locks the
	 * table (ACCESS SHARE here is gone by then); CLUSTER of one table
	 * locks it in this one, so take what it will take.
	 */
	if (!measure(ctx, relid, relkind == RELKIND_PARTITIONED_TABLE,
				 strcmp(command, "CLUSTER") == 0 && relkind != RELKIND_PARTITIONED_TABLE
				 ? AccessExclusiveLock : AccessShareLock, &m) ||
		!is_large(&m))
		return;
	f = add_finding(ctx, "table rewrite", relid, NULL, &m);
	f->message = psprintf(_("%s would rewrite table \"%s.%s\" (%s) while it blocks its reads and writes"),
						  command, f->nspname, f->relname, measured_text(&m));
	f->detail = psprintf(_("%s %s rewrites every row while it holds ACCESS EXCLUSIVE lock on the table."),
						 threshold_text(relid, &m), command);
	f->hint = psprintf(_("Rebuild the table online instead, with pg_repack, which holds ACCESS EXCLUSIVE lock only at the start and the end:\n"
						 "pg_repack --table=%s%s\n"
						 "Plain VACUUM makes dead rows' space reusable without blocking."),
					   qualified(relid), repack);
}

static void
check_vacuum(Ctx *ctx, VacuumStmt *stmt)
{
	ListCell   *lc;
	bool		full = false;

	if (!stmt->is_vacuumcmd)
		return;
	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "full") == 0)
			full = defGetBoolean(opt);
	}
	if (!full)
		return;
	foreach(lc, stmt->rels)
	{
		VacuumRelation *vrel = lfirst(lc);

		if (vrel->relation)
			check_rewrite_command(ctx, vrel->relation, "VACUUM FULL", "");
	}
}

static void
check_cluster(Ctx *ctx, ClusterStmt *stmt)
{
	if (stmt->relation == NULL)
		return;
	check_rewrite_command(ctx, stmt->relation, "CLUSTER",
						  stmt->indexname ? psprintf(" --order-by=<the index's columns>  (CLUSTER ... USING %s)",
													 quote_identifier(stmt->indexname))
						  : " --order-by=<the clustered index's columns>");
}

/* A SET lock_timeout in a dry-run script (executed nothing, but counts). */
static void
note_set(Ctx *ctx, VariableSetStmt *stmt)
{
	if (ctx->script == NULL || stmt->name == NULL ||
		strcmp(stmt->name, "lock_timeout") != 0)
		return;
	ctx->script->lock_timeout_known = true;
	if (stmt->kind == VAR_SET_VALUE)
	{
		char	   *value = ExtractSetVariableArgs(stmt);
		int			ms = 0;

		ctx->script->lock_timeout_on = value && parse_int(value, &ms, GUC_UNIT_MS, NULL) && ms > 0;
	}
	else
		ctx->script->lock_timeout_on = false;	/* DEFAULT, RESET: 0 */
}

/*-------------------------------------------------------------------------
 * Entry points
 *-------------------------------------------------------------------------
 */

/* Is this a statement the family looks at (the hook's cheap test)? */
static bool
concerned(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
		case T_IndexStmt:
		case T_ReindexStmt:
		case T_VacuumStmt:
		case T_ClusterStmt:
			return true;
		case T_DropStmt:
			return ((DropStmt *) parsetree)->removeType == OBJECT_INDEX;
		default:
			return false;
	}
}

/*
 * The findings of one statement (a list of RgLockFinding).  script is the
 * dry run's state (NULL in the guard, where the relations are locked as
 * the statement will lock them).
 */
List *
rg_lock_check_statement(Node *parsetree, const char *query, int location,
						int len, RgLockScript *script)
{
	Ctx			ctx = {script, query, location, len, NULL, NIL};

	if (rg_lock_checks == RG_LOCK_CHECKS_OFF)
		return NIL;
	if (IsA(parsetree, VariableSetStmt))
	{
		note_set(&ctx, (VariableSetStmt *) parsetree);
		return NIL;
	}
	if (!concerned(parsetree))
		return NIL;
	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
			check_alter_table(&ctx, (AlterTableStmt *) parsetree);
			break;
		case T_IndexStmt:
			check_create_index(&ctx, (IndexStmt *) parsetree);
			break;
		case T_DropStmt:
			check_drop_index(&ctx, (DropStmt *) parsetree);
			break;
		case T_ReindexStmt:
			check_reindex(&ctx, (ReindexStmt *) parsetree);
			break;
		case T_VacuumStmt:
			check_vacuum(&ctx, (VacuumStmt *) parsetree);
			break;
		case T_ClusterStmt:
			check_cluster(&ctx, (ClusterStmt *) parsetree);
			break;
		default:
			break;
	}
	return ctx.findings;
}

/* What rollguard.history keeps of a finding let through. */
static char *
finding_json(RgLockFinding *f)
{
	StringInfoData json;

	initStringInfo(&json);
	appendStringInfoString(&json, "{\"family\": \"downtime\", \"check\": ");
	escape_json(&json, f->check);
	appendStringInfoString(&json, ", \"statement\": ");
	escape_json(&json, f->statement);
	appendStringInfoString(&json, ", \"message\": ");
	escape_json(&json, f->message);
	if (f->bytes > 0 || f->rows >= 0)
	{
		appendStringInfo(&json, ", \"size_bytes\": " INT64_FORMAT, f->bytes);
		if (f->rows >= 0)
			appendStringInfo(&json, ", \"rows\": %.0f", f->rows);
	}
	appendStringInfoChar(&json, '}');
	return json.data;
}

static void
report_finding(int elevel, RgLockFinding *f, int more)
{
	char	   *detail = f->detail;

	if (more > 0)
		detail = psprintf(ngettext("%s\nThe statement would stall deployed code in %d more way; rollguard.check() lists it.",
								   "%s\nThe statement would stall deployed code in %d more ways; rollguard.check() lists them.",
								   more),
						  detail, more);
	ereport(elevel,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg_internal("%s", f->message),
			 errdetail_internal("%s", detail),
			 errhint("%s", f->hint)));
}

/*
 * The guard: the statement's findings, acted on by rollguard.lock_checks
 * (on: the first refused, naming how many more; warn: each a WARNING),
 * unless an override covers them.  Runs before the compatibility rules,
 * and before anything is locked: the lock_timeout check must see the lock
 * queue as the statement will find it.
 */
void
rg_lock_checks_statement(Node *parsetree, const char *query, int location, int len)
{
	List	   *findings;
	List	   *blocked = NIL;
	ListCell   *lc;

	if (rg_lock_checks == RG_LOCK_CHECKS_OFF || !concerned(parsetree) || XactReadOnly)
		return;
	if (!rg_extension_active())
		return;
	findings = rg_lock_check_statement(parsetree, query, location, len, NULL);
	foreach(lc, findings)
	{
		RgLockFinding *f = lfirst(lc);
		RgChange	ch = {0};
		const char *reason;

		ch.nspname = f->nspname;
		ch.relname = f->relname;
		ch.attname = f->attname;
		reason = rg_override_reason(&ch);
		if (reason == NULL)
		{
			blocked = lappend(blocked, f);
			continue;
		}
		rg_log_history("override applied", f->nspname, f->relname, f->attname,
					   reason, finding_json(f));
		ereport(NOTICE,
				(errmsg("override lets %s on %s.%s through, although it would stall deployed code",
						f->check, f->nspname, f->relname),
				 errdetail("Reason given: %s", reason)));
	}
	if (blocked == NIL)
		return;
	if (rg_lock_checks == RG_LOCK_CHECKS_ON)
		report_finding(ERROR, linitial(blocked), list_length(blocked) - 1);
	foreach(lc, blocked)
	{
		RgLockFinding *f = lfirst(lc);

		report_finding(WARNING, f, 0);
		rg_log_history("let through (lock_checks = warn)", f->nspname, f->relname,
					   f->attname, NULL, finding_json(f));
	}
}
