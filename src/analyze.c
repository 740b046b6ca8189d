/*-------------------------------------------------------------------------
 * analyze.c
 *		Turns a raw utility statement into the list of changes it makes that
 *		can break code: "where is DROP COLUMN decided" starts here.
 *
 * Relations are resolved like the statement itself resolves them (quoted
 * names, schema qualification, search_path); in the guard (not in the dry
 * run) they are locked first, as the statement will lock them.  Within
 * one statement (several ALTER TABLE sub-commands) or one dry-run script,
 * an overlay remembers what earlier commands did to a column, so that
 * "ADD COLUMN c ... DEFAULT x NOT NULL, ALTER c DROP DEFAULT" is seen as
 * dropping the default of a NOT NULL column.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/genam.h"
#include "access/table.h"
#include "catalog/catalog.h"
#include "commands/tablecmds.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/sinval.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_extension.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "partitioning/partdesc.h"
#include "rewrite/rewriteSupport.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "access/relation.h"
#include "commands/defrem.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "compat.h"
#include "rollguard.h"

/* What earlier commands of the statement (or script) did to a column. */
typedef struct ColState
{
	Oid			relid;
	char	   *attname;		/* its name now */
	AttrNumber	origin;			/* the catalog's column it is (0: one the
								 * statement or script adds) */
	char	   *origin_name;	/* ... and its name there */
	RgColumnFacts f;
} ColState;

/* A relation the script renamed or moved: its names now. */
typedef struct RelState
{
	Oid			relid;
	char	   *nspname;
	char	   *relname;
} RelState;

/* A constraint the script dropped. */
typedef struct DroppedConstraint
{
	Oid			relid;
	char	   *conname;
} DroppedConstraint;

struct RgOverlay
{
	LOCKMODE	lockmode;		/* see below */
	List	   *columns;		/* ColState */
	List	   *relations;		/* RelState */
	List	   *dropped;		/* DroppedConstraint */
};

/*
 * A new overlay, for the guard's analysis of one statement (lock: the
 * relations it names are locked first, as the statement will lock them) or
 * for the dry run's of a script (no locks).
 */
RgOverlay *
rg_overlay_new(bool lock)
{
	RgOverlay  *overlay = palloc0(sizeof(RgOverlay));

	overlay->lockmode = lock ? AccessExclusiveLock : NoLock;
	return overlay;
}

/* The statements that can name a breaking change; everything else passes. */
bool
rg_is_candidate(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
		case T_RenameStmt:
		case T_AlterObjectSchemaStmt:
		case T_DropStmt:
		case T_AlterDomainStmt:
		case T_RuleStmt:
			return true;
		default:
			return false;
	}
}

RgChange *
rg_make_change(RgChangeKind kind, Oid relid, const char *attname)
{
	RgChange   *ch = palloc0(sizeof(RgChange));
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));

	ch->kind = kind;
	ch->relid = relid;
	/* the relation's kind and names, from one look at pg_class */
	if (HeapTupleIsValid(tup))
	{
		Form_pg_class rel = (Form_pg_class) GETSTRUCT(tup);

		ch->relkind = rel->relkind;
		ch->nspname = get_namespace_name(rel->relnamespace);
		ch->relname = pstrdup(NameStr(rel->relname));
		ReleaseSysCache(tup);
	}
	if (attname)
	{
		ch->attname = pstrdup(attname);
		ch->attnum = get_attnum(relid, attname);
		if (ch->attnum == InvalidAttrNumber)
			ch->attnum = 0;
	}
	rg_net_original_names(ch);
	return ch;
}

/* The text of one statement of a query string (the whole of it if unknown). */
char *
rg_statement_text(const char *query, int location, int len)
{
	char	   *start;
	char	   *end;

	if (location < 0)
		location = 0;
	if (len <= 0)
		len = strlen(query + location);
	start = pnstrdup(query + location, len);
	while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
		start++;
	end = start + strlen(start);
	while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' ||
						   end[-1] == '\r'))
		*--end = '\0';
	return start;
}

/*
 * overlay->lockmode: the lock the statement will take, taken now (in the
 * guard, not in the dry run: NoLock): the catalog state the rules look at
 * cannot change between the check and the statement, so two migrations
 * cannot both pass where no serial order would let them.  Like PostgreSQL,
 * lock only what the user may alter (its owner, or for DROP the schema's
 * owner); for anything else the statement fails on its own, and there is
 * nothing to check.
 */

/* The names the script gave the relation, or NULL if it gave none. */
static RelState *
relation_renamed(RgOverlay *overlay, Oid relid)
{
	ListCell   *lc;

	foreach(lc, overlay->relations)
	{
		RelState   *rs = lfirst(lc);

		if (rs->relid == relid)
			return rs;
	}
	return NULL;
}

/* The relation's names, to be changed by the script's rename. */
static RelState *
relation_renaming(RgOverlay *overlay, Oid relid)
{
	RelState   *rs = relation_renamed(overlay, relid);

	if (rs == NULL)
	{
		rs = palloc(sizeof(RelState));
		rs->relid = relid;
		rs->nspname = get_namespace_name(get_rel_namespace(relid));
		rs->relname = get_rel_name(relid);
		overlay->relations = lappend(overlay->relations, rs);
	}
	return rs;
}

/*
 * A relation the script renamed or moved, by the name it gave it (resolved
 * against search_path if not qualified), or InvalidOid.
 */
static Oid
relation_by_new_name(RgOverlay *overlay, RangeVar *rv)
{
	List	   *path = NIL;
	ListCell   *lc;

	if (overlay->relations == NIL)
		return InvalidOid;
	if (rv->schemaname == NULL)
		path = fetch_search_path(false);
	foreach(lc, overlay->relations)
	{
		RelState   *rs = lfirst(lc);

		if (strcmp(rs->relname, rv->relname) != 0)
			continue;
		if (rv->schemaname ? strcmp(rs->nspname, rv->schemaname) == 0
			: list_member_oid(path, get_namespace_oid(rs->nspname, true)))
			return rs->relid;
	}
	return InvalidOid;
}

static Oid
resolve_relation(RgOverlay *overlay, RangeVar *rv)
{
	for (;;)
	{
		Oid			relid;
		uint64		inval_count = SharedInvalidMessageCounter;

		if (rv == NULL)
			return InvalidOid;
		/* what earlier statements of a dry-run script renamed */
		if (OidIsValid(relid = relation_by_new_name(overlay, rv)))
			return relid;
		relid = RangeVarGetRelid(rv, NoLock, true);
		if (!OidIsValid(relid) || !rg_relation_is_guarded(relid, NULL))
			return InvalidOid;
		if (relation_renamed(overlay, relid) != NULL)
			return InvalidOid;	/* not its name any more */
		if (overlay->lockmode == NoLock)
			return relid;
		if (!rg_class_ownercheck(relid, GetUserId()) &&
			!rg_namespace_ownercheck(get_rel_namespace(relid), GetUserId()))
			return InvalidOid;
		LockRelationOid(relid, overlay->lockmode);

		/*
		 * Renamed or dropped while we waited?  Look it up again, unless no
		 * invalidation came in since the name was looked up (as
		 * RangeVarGetRelidExtended() does): then nothing changed it.
		 */
		if (inval_count == SharedInvalidMessageCounter ||
			RangeVarGetRelid(rv, NoLock, true) == relid)
			return relid;
		UnlockRelationOid(relid, overlay->lockmode);
	}
}

/*
 * The guard (not the dry run) is about to look at the relation or its
 * column: the net effect notes what they were before the transaction.
 */
static void
touch(RgOverlay *overlay, Oid relid, const char *attname)
{
	if (overlay->lockmode != NoLock)
		rg_net_touch(relid, attname);
}

/* The relation and, unless ONLY was written, every relation inheriting it. */
static List *
relation_and_children(RgOverlay *overlay, Oid relid, RangeVar *rv)
{
	List	   *all;
	List	   *result = NIL;
	ListCell   *lc;

	if (!rv->inh || !has_subclass(relid))
		return list_make1_oid(relid);
	all = find_all_inheritors(relid, overlay->lockmode, NULL);
	foreach(lc, all)
	{
		if (rg_relation_is_guarded(lfirst_oid(lc), NULL))
			result = lappend_oid(result, lfirst_oid(lc));
	}
	return result;
}

/* The column that the catalog's column attnum is now, or NULL. */
static ColState *
column_by_origin(RgOverlay *overlay, Oid relid, AttrNumber attnum)
{
	ListCell   *lc;

	foreach(lc, overlay->columns)
	{
		ColState   *st = lfirst(lc);

		if (st->relid == relid && st->origin == attnum)
			return st;
	}
	return NULL;
}

/* The column's state: overlay first, then the catalog. */
static ColState *
column_state(RgOverlay *overlay, Oid relid, const char *attname)
{
	ListCell   *lc;
	ColState   *st;
	AttrNumber	attnum;
	RgColumnFacts facts;

	foreach(lc, overlay->columns)
	{
		st = lfirst(lc);
		if (st->relid == relid && strcmp(st->attname, attname) == 0)
			return st;
	}

	st = palloc0(sizeof(ColState));
	st->relid = relid;
	st->attname = pstrdup(attname);
	/* the catalog's column of that name, unless the script renamed it */
	facts = rg_column_facts_by_name(relid, attname, &attnum);
	if (facts.exists && column_by_origin(overlay, relid, attnum) == NULL)
	{
		st->origin = attnum;
		st->origin_name = st->attname;
		st->f = facts;
	}
	touch(overlay, relid, attname);
	overlay->columns = lappend(overlay->columns, st);
	return st;
}

/*
 * The script renames a column: its state goes with it to the new name, and
 * the old name is free.
 */
static void
rename_column(RgOverlay *overlay, ColState *st, const char *newname)
{
	ColState   *to = NULL;
	ListCell   *lc;

	/* (not from the catalog: a column of that name there is an error) */
	foreach(lc, overlay->columns)
	{
		ColState   *c = lfirst(lc);

		if (c->relid == st->relid && strcmp(c->attname, newname) == 0)
			to = c;
	}
	if (to == NULL)
	{
		to = palloc0(sizeof(ColState));
		to->relid = st->relid;
		to->attname = pstrdup(newname);
		overlay->columns = lappend(overlay->columns, to);
	}
	to->origin = st->origin;
	to->origin_name = st->origin_name;
	to->f = st->f;
	st->origin = 0;
	st->origin_name = NULL;
	memset(&st->f, 0, sizeof(st->f));
}

/* A change of the column: named and numbered as the catalog knows it. */
static RgChange *
column_change(RgChangeKind kind, ColState *st)
{
	RgChange   *ch = rg_make_change(kind, st->relid,
									st->origin > 0 ? st->origin_name : st->attname);

	if (st->origin == 0)
		ch->attnum = 0;			/* not (yet) in the catalog */
	return ch;
}

static bool
has_default(ColState *st)
{
	return RG_FACTS_HAVE_DEFAULT(st->f);
}

/* DEFAULT NULL (also NULL::type) is no default at all. */
static bool
is_null_constant(Node *expr)
{
	while (expr != NULL && IsA(expr, TypeCast))
		expr = ((TypeCast *) expr)->arg;
	return expr != NULL && IsA(expr, A_Const) && A_CONST_IS_NULL((A_Const *) expr);
}

static bool
is_serial_type(TypeName *tn)
{
	const char *name;

	if (tn->arrayBounds != NIL)
		return false;
	if (list_length(tn->names) == 2 &&
		strcmp(strVal(linitial(tn->names)), "pg_catalog") != 0)
		return false;
	if (list_length(tn->names) > 2)
		return false;
	name = strVal(llast(tn->names));
	return strcmp(name, "serial") == 0 || strcmp(name, "serial4") == 0 ||
		strcmp(name, "bigserial") == 0 || strcmp(name, "serial8") == 0 ||
		strcmp(name, "smallserial") == 0 || strcmp(name, "serial2") == 0;
}

/* Columns that a CHECK expression forces to be NOT NULL: "c IS NOT NULL",
 * also as a conjunct of AND. */
static List *
check_notnull_columns(Node *expr)
{
	if (expr == NULL)
		return NIL;
	if (IsA(expr, NullTest))
	{
		NullTest   *nt = (NullTest *) expr;

		if (nt->nulltesttype == IS_NOT_NULL && nt->arg && IsA(nt->arg, ColumnRef))
		{
			Node	   *last = llast(((ColumnRef *) nt->arg)->fields);

			if (IsA(last, String))
				return list_make1(strVal(last));
		}
		return NIL;
	}
	/* NOT (c IS NULL) */
	if (IsA(expr, BoolExpr) && ((BoolExpr *) expr)->boolop == NOT_EXPR)
	{
		Node	   *arg = linitial(((BoolExpr *) expr)->args);

		if (IsA(arg, NullTest) && ((NullTest *) arg)->nulltesttype == IS_NULL)
		{
			NullTest	flipped = *(NullTest *) arg;

			flipped.nulltesttype = IS_NOT_NULL;
			return check_notnull_columns((Node *) &flipped);
		}
		return NIL;
	}
	/* (c IS NOT NULL) IS TRUE */
	if (IsA(expr, BooleanTest) && ((BooleanTest *) expr)->booltesttype == IS_TRUE)
		return check_notnull_columns((Node *) ((BooleanTest *) expr)->arg);
	if (IsA(expr, BoolExpr) && ((BoolExpr *) expr)->boolop == AND_EXPR)
	{
		List	   *result = NIL;
		ListCell   *lc;

		foreach(lc, ((BoolExpr *) expr)->args)
			result = list_concat(result, check_notnull_columns(lfirst(lc)));
		return result;
	}
	return NIL;
}

/* The type a type name names, and its modifier (InvalidOid if none). */
static Oid
type_of(TypeName *tn, int32 *typmod)
{
	Type		typ = LookupTypeName(NULL, tn, typmod, true);
	Oid			typid;

	if (typ == NULL)
		return InvalidOid;
	typid = ((Form_pg_type) GETSTRUCT(typ))->oid;
	ReleaseSysCache(typ);
	return typid;
}

/*
 * The collation a column definition gives (ADD COLUMN, ALTER COLUMN TYPE):
 * its COLLATE clause, else the type's own, as PostgreSQL decides it.  A
 * type change without COLLATE resets the column's collation to the new
 * type's default.
 */
static Oid
column_def_collation(ColumnDef *def, Oid typid)
{
	if (def->collClause != NULL)
		return LookupCollation(NULL, def->collClause->collname, def->collClause->location);
	return OidIsValid(typid) ? get_typcollation(typid) : InvalidOid;
}

/* Does a default, as written, yield a value for the column (nullness.c)? */
static bool
default_yields(Node *raw, ColState *st)
{
	if (raw == NULL || is_null_constant(raw))
		return false;
	return rg_raw_default_yield(raw, st->f.typid, st->f.typmod, st->attname) == RG_YIELDS_VALUE;
}

/*
 * What a CHECK that the statement adds says of NULL in column st of
 * relation relid: judged on the cooked expression (nullness.c); if it
 * cannot be cooked (it names a column the statement adds, say), on the
 * text ("c IS NOT NULL").  newcol: the column is the one the statement
 * adds (ADD COLUMN c ... CHECK (...)).
 */
static RgNullVerdict
check_null_verdict(Oid relid, Node *raw, ColState *st, bool newcol)
{
	RgNullVerdict verdict;
	ListCell   *lc;

	if (newcol
		? rg_raw_check_null_verdict(relid, raw, 0, st->attname, st->f.typid, st->f.typmod, &verdict)
		: (st->origin > 0 && strcmp(st->attname, st->origin_name) == 0 &&
		   rg_raw_check_null_verdict(relid, raw, st->origin, NULL, InvalidOid, -1, &verdict)))
		return verdict;
	foreach(lc, check_notnull_columns(raw))
	{
		if (strcmp(lfirst(lc), st->attname) == 0)
			return RG_REJECTS_NULL;
	}
	return RG_ACCEPTS_NULL;
}

/* The names of the columns a raw expression refers to. */
static bool
column_names_walker(Node *node, List **names)
{
	if (node == NULL)
		return false;
	if (IsA(node, ColumnRef))
	{
		Node	   *last = llast(((ColumnRef *) node)->fields);

		if (IsA(last, String) && !list_member(*names, last))
			*names = lappend(*names, last);
		return false;
	}
	return raw_expression_tree_walker(node, column_names_walker, (void *) names);
}

/* NOT NULL and default of a column being added, from its raw definition. */
static void
column_def_state(ColumnDef *def, ColState *st)
{
	ListCell   *lc;
	Node	   *raw_default = def->raw_default;
	bool		dom_default;

	st->f.exists = true;
	st->f.typid = type_of(def->typeName, &st->f.typmod);
	st->f.collation = column_def_collation(def, st->f.typid);
	st->f.identity = def->identity;
	st->f.notnull = def->is_not_null;
	st->f.other_default = def->identity != '\0' || def->generated != '\0' ||
		is_serial_type(def->typeName);

	foreach(lc, def->constraints)
	{
		Constraint *con = lfirst_node(Constraint, lc);

		switch (con->contype)
		{
			case CONSTR_NOTNULL:
			case CONSTR_PRIMARY:
				st->f.notnull = true;
				break;
			case CONSTR_NULL:
				st->f.notnull = false;
				break;
			case CONSTR_DEFAULT:
				raw_default = con->raw_expr;
				break;
			case CONSTR_IDENTITY:
			case CONSTR_GENERATED:
				st->f.other_default = true;
				break;
			case CONSTR_CHECK:
				/* rejects NULL, or may: refused as NOT NULL when in doubt */
				if (column_constraint_is_enforced(def->constraints, lc) &&
					check_null_verdict(st->relid, con->raw_expr, st, true) != RG_ACCEPTS_NULL)
					st->f.notnull = true;
				break;
			default:
				break;
		}
	}
	st->f.own_default = default_yields(raw_default, st);

	if (OidIsValid(st->f.typid) &&
		rg_type_null_facts(st->f.typid, InvalidOid, &dom_default) != RG_ACCEPTS_NULL)
		st->f.notnull = true;
	st->f.type_default = OidIsValid(st->f.typid) && dom_default;
}

/*
 * USING is harmless when it only names the column, or casts it to the new
 * type itself (Django: TYPE bigint USING "c"::bigint).
 */
static bool
same_type(TypeName *a, TypeName *b)
{
	int32		moda;
	int32		modb;
	Type		ta = LookupTypeName(NULL, a, &moda, true);
	Type		tb = LookupTypeName(NULL, b, &modb, true);
	bool		result = false;

	if (ta != NULL && tb != NULL)
		result = ((Form_pg_type) GETSTRUCT(ta))->oid == ((Form_pg_type) GETSTRUCT(tb))->oid &&
			(moda == modb || moda < 0);
	if (ta != NULL)
		ReleaseSysCache(ta);
	if (tb != NULL)
		ReleaseSysCache(tb);
	return result;
}

static bool
using_is_plain(Node *expr, const char *attname, TypeName *newtype)
{
	if (expr == NULL)
		return true;
	if (IsA(expr, TypeCast))
	{
		if (!same_type(((TypeCast *) expr)->typeName, newtype))
			return false;
		expr = ((TypeCast *) expr)->arg;
	}
	if (IsA(expr, ColumnRef))
	{
		Node	   *last = llast(((ColumnRef *) expr)->fields);

		return IsA(last, String) && strcmp(strVal(last), attname) == 0;
	}
	return false;
}

/*
 * ALTER COLUMN ... TYPE: does it only widen the column's type?  The
 * column's state takes the new type.
 */
static bool
type_change_widens(ColState *st, ColumnDef *def)
{
	RgColumnFacts after = st->f;
	bool		widens;

	after.typid = type_of(def->typeName, &after.typmod);
	after.collation = column_def_collation(def, after.typid);
	widens = using_is_plain(def->raw_default, st->attname, def->typeName) &&
		OidIsValid(st->f.typid) && OidIsValid(after.typid) &&
		rg_column_type_widens(&st->f, &after);
	st->f.typid = after.typid;
	st->f.typmod = after.typmod;
	st->f.collation = after.collation;
	return widens;
}

/* Every guarded relation in a schema. */
static List *
relations_in_schema(Oid nspoid)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *result = NIL;

	rel = table_open(RelationRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_class_relnamespace, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(nspoid));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Oid			relid = ((Form_pg_class) GETSTRUCT(tup))->oid;

		if (rg_relation_is_guarded(relid, NULL))
			result = lappend_oid(result, relid);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	/* in creation order, not pg_class's physical order (messages name the first) */
	list_sort(result, list_oid_cmp);
	return result;
}

/*
 * The guarded relations in the schema of that name now: the catalog's,
 * less those the script moved away or whose schema it renamed, plus those
 * it moved there.
 */
static List *
relations_in_schema_now(RgOverlay *overlay, const char *nspname)
{
	Oid			nsp = get_namespace_oid(nspname, true);
	List	   *result = NIL;
	ListCell   *lc;

	if (OidIsValid(nsp))
	{
		foreach(lc, relations_in_schema(nsp))
		{
			if (relation_renamed(overlay, lfirst_oid(lc)) == NULL)
				result = lappend_oid(result, lfirst_oid(lc));
		}
	}
	foreach(lc, overlay->relations)
	{
		RelState   *rs = lfirst(lc);

		if (strcmp(rs->nspname, nspname) == 0)
			result = lappend_oid(result, rs->relid);
	}
	return result;
}

/* Every column of a guarded relation whose type is typid or a domain on it. */
static List *
columns_of_type(Oid typid)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, rg_columns_of_type(typid))
	{
		ObjectAddress *col = lfirst(lc);

		result = lappend(result,
						 rg_make_change(RG_CASCADE_DROP_COLUMN, col->objectId,
										get_attname(col->objectId, col->objectSubId, false)));
	}
	return result;
}

/*
 * Does ALTER TABLE parent DROP COLUMN drop the column of this inheriting
 * table too?  Only if it has it from that one parent alone.
 */
static bool
dropped_with_parent(Oid relid, const char *attname)
{
	HeapTuple	tup = SearchSysCacheAttName(relid, attname);
	bool		result;

	if (!HeapTupleIsValid(tup))
		return false;
	result = !((Form_pg_attribute) GETSTRUCT(tup))->attislocal &&
		((Form_pg_attribute) GETSTRUCT(tup))->attinhcount == 1;
	ReleaseSysCache(tup);
	return result;
}

/* ADD GENERATED ALWAYS AS IDENTITY, or SET GENERATED ALWAYS. */
static bool
makes_generated_always(AlterTableCmd *cmd)
{
	ListCell   *lc;

	if (cmd->subtype == AT_AddIdentity)
		return castNode(Constraint, cmd->def)->generated_when == ATTRIBUTE_IDENTITY_ALWAYS;
	foreach(lc, castNode(List, cmd->def))
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "generated") == 0 &&
			defGetInt32(def) == ATTRIBUTE_IDENTITY_ALWAYS)
			return true;
	}
	return false;
}

/* The column's identity after ADD ... AS IDENTITY or SET GENERATED. */
static char
identity_after(AlterTableCmd *cmd, char identity)
{
	ListCell   *lc;

	if (cmd->subtype == AT_AddIdentity)
		return castNode(Constraint, cmd->def)->generated_when;
	foreach(lc, castNode(List, cmd->def))
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "generated") == 0)
			identity = defGetInt32(def);
	}
	return identity;
}

/* The columns of an existing index (PRIMARY KEY USING INDEX). */
static List *
index_columns(Oid relid, const char *indexname)
{
	Oid			indexoid = get_relname_relid(indexname, get_rel_namespace(relid));
	HeapTuple	tup;
	List	   *result = NIL;

	if (!OidIsValid(indexoid))
		return NIL;
	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	if (!HeapTupleIsValid(tup))
		return NIL;
	{
		Form_pg_index idx = (Form_pg_index) GETSTRUCT(tup);

		for (int i = 0; i < idx->indnkeyatts; i++)
		{
			char	   *name = get_attname(relid, idx->indkey.values[i], true);

			if (name)
				result = lappend(result, name);
		}
	}
	ReleaseSysCache(tup);
	return result;
}

/*
 * The inheriting tables that ALTER CONSTRAINT nn INHERIT makes NOT NULL
 * (PostgreSQL 18; see compat.h): all of them, ONLY or not.
 */
static List *
not_null_inherited(RgOverlay *overlay, Oid relid, AlterTableCmd *cmd)
{
	char	   *col = not_null_made_inheritable(relid, cmd);
	List	   *changes = NIL;
	ListCell   *lc;

	if (col == NULL || !has_subclass(relid))
		return NIL;
	foreach(lc, find_all_inheritors(relid, overlay->lockmode, NULL))
	{
		Oid			r = lfirst_oid(lc);
		ColState   *st;

		if (r == relid || !rg_relation_is_guarded(r, NULL))
			continue;
		st = column_state(overlay, r, col);
		if (st->f.exists && !st->f.notnull)
		{
			RgChange   *ch = column_change(RG_SET_NOT_NULL, st);

			ch->has_default = has_default(st);
			changes = lappend(changes, ch);
		}
		st->f.notnull = true;
	}
	return changes;
}

/*
 * The typed tables (CREATE TABLE ... OF type) of the composite type that rv
 * names: ALTER TYPE ... CASCADE changes their columns too.
 */
static List *
typed_tables(RgOverlay *overlay, RangeVar *rv)
{
	Oid			typrelid = RangeVarGetRelid(rv, NoLock, true);
	Oid			typid;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *result = NIL;

	if (!OidIsValid(typrelid) || get_rel_relkind(typrelid) != RELKIND_COMPOSITE_TYPE)
		return NIL;
	if (overlay->lockmode != NoLock && !rg_class_ownercheck(typrelid, GetUserId()))
		return NIL;				/* the statement fails on its own */
	typid = get_rel_type_id(typrelid);
	rel = table_open(RelationRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_class cls = (Form_pg_class) GETSTRUCT(tup);

		if (cls->reloftype == typid && rg_relation_is_guarded(cls->oid, NULL))
			result = lappend_oid(result, cls->oid);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (overlay->lockmode != NoLock)
	{
		ListCell   *lc;

		foreach(lc, result)
			LockRelationOid(lfirst_oid(lc), overlay->lockmode);
	}
	return result;
}

/*
 * PostgreSQL runs an ALTER TABLE's sub-commands in passes, not in the
 * order written (tablecmds.c, ATPrepCmd): every DROP first, then type
 * changes, added columns, column attributes (SET NOT NULL), constraints,
 * defaults and identities, the rest.  "SET DEFAULT 1, DROP DEFAULT" leaves
 * the default; "SET NOT NULL, DROP NOT NULL" leaves NOT NULL.  The
 * analysis follows the same order, so that what it sees the statement
 * leave is what the statement leaves.
 */
static int
command_pass(AlterTableCmd *cmd)
{
	switch (cmd->subtype)
	{
		case AT_DropColumn:
		case AT_DropNotNull:
		case AT_DropIdentity:
		case AT_DropConstraint:
			return 0;
		case AT_ColumnDefault:
			return cmd->def == NULL ? 0 : 9;
		case AT_AlterColumnType:
			return 1;
		case AT_AddColumn:
			return 4;
		case AT_SetNotNull:
			return 5;
		case AT_AddConstraint:
			return 7;
		case AT_AddIdentity:
			return 9;
		default:
			return 10;
	}
}

typedef struct OrderedCmd
{
	AlterTableCmd *cmd;
	int			pass;
	int			written;		/* its place in the statement */
} OrderedCmd;

static int
ordered_cmd_cmp(const void *a, const void *b)
{
	const OrderedCmd *x = a;
	const OrderedCmd *y = b;

	if (x->pass != y->pass)
		return x->pass - y->pass;
	return x->written - y->written;
}

/* The statement's sub-commands in the order PostgreSQL runs them. */
static List *
commands_in_run_order(List *cmds)
{
	int			n = list_length(cmds);
	OrderedCmd *order = palloc(sizeof(OrderedCmd) * Max(n, 1));
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		order[foreach_current_index(lc)].cmd = cmd;
		order[foreach_current_index(lc)].pass = command_pass(cmd);
		order[foreach_current_index(lc)].written = foreach_current_index(lc);
	}
	qsort(order, n, sizeof(OrderedCmd), ordered_cmd_cmp);
	for (int i = 0; i < n; i++)
		result = lappend(result, order[i].cmd);
	pfree(order);
	return result;
}

/*
 * A change whose verdict depends on what the whole statement leaves the
 * column: a default lost (DROP DEFAULT, DROP IDENTITY, a column added NOT
 * NULL) breaks inserts only if no other default replaces it in the same
 * statement ("DROP DEFAULT, ADD GENERATED BY DEFAULT AS IDENTITY" swaps a
 * serial for an identity); a NOT NULL is judged with the default the
 * column is left with.
 */
typedef struct Settled
{
	RgChange   *change;
	ColState   *st;
} Settled;

static List *
settle(List *settled, RgChange *ch, ColState *st)
{
	Settled    *s = palloc(sizeof(Settled));

	s->change = ch;
	s->st = st;
	return lappend(settled, s);
}

/* The statement's end: what the settled changes come to. */
static List *
settled_changes(List *changes, List *settled)
{
	ListCell   *lc;

	foreach(lc, settled)
	{
		Settled    *s = lfirst(lc);

		switch (s->change->kind)
		{
			case RG_SET_NOT_NULL:
			case RG_CHECK_NOT_NULL:
			case RG_ATTACH_NOT_NULL:
				s->change->has_default = has_default(s->st);
				break;
			default:
				/* left NOT NULL without any default */
				if (!s->st->f.exists || !RG_FACTS_REJECT_NULL(s->st->f) || has_default(s->st) ||
					rg_change_listed(changes, s->change))
					continue;
				changes = lappend(changes, s->change);
				break;
		}
	}
	return changes;
}

/*
 * A partition leaves its table (DETACH PARTITION, DROP TABLE of the
 * partition): rows that only it takes have nowhere to go, and code that
 * inserts into the table (or a table above it) breaks -- when it is the
 * DEFAULT partition, or a hash partition (every key hashes somewhere).  A
 * range or list partition that is not the default is what retention jobs
 * drop every month: the rows it took are for values the code is not
 * expected to insert any more; that is not judged.
 */
static List *
partition_leaves(RgChangeKind kind, Oid part)
{
	Oid			parent;
	List	   *changes = NIL;
	ListCell   *lc;
	bool		breaks;

	if (!get_rel_relispartition(part))
		return NIL;
	parent = get_partition_parent(part, true);
	if (!OidIsValid(parent))
		return NIL;
	breaks = get_default_partition_oid(parent) == part;
	if (!breaks)
	{
		Relation	rel = relation_open(parent, AccessShareLock);

		breaks = RelationGetPartitionKey(rel)->strategy == PARTITION_STRATEGY_HASH;
		relation_close(rel, AccessShareLock);
	}
	if (!breaks)
		return NIL;
	foreach(lc, get_partition_ancestors(part))
	{
		RgChange   *ch;

		if (!rg_relation_is_guarded(lfirst_oid(lc), NULL))
			continue;
		ch = rg_make_change(kind, lfirst_oid(lc), NULL);
		ch->target = get_rel_name(part);
		changes = lappend(changes, ch);
	}
	return changes;
}

/*
 * ALTER TABLE parent ATTACH PARTITION p FOR VALUES ...: the partition's
 * bound becomes a constraint of p, and a range bound (a list bound without
 * NULL) rejects NULL in the partition key: code that inserts into p itself
 * breaks as if the key were made NOT NULL.
 */
static List *
attach_partition(RgOverlay *overlay, Oid parent, AlterTableCmd *cmd, List **settled)
{
	PartitionCmd *pc = (PartitionCmd *) cmd->def;
	Oid			part;
	List	   *changes = NIL;
	ListCell   *lc;

	if (pc == NULL || pc->bound == NULL)
		return NIL;
	part = RangeVarGetRelid(pc->name, overlay->lockmode, true);
	if (!OidIsValid(part) || !rg_relation_is_guarded(part, NULL))
		return NIL;
	foreach(lc, rg_attach_rejects_null(parent, part, pc->bound))
	{
		char	   *attname = get_attname(part, lfirst_int(lc), true);
		ColState   *st;

		if (attname == NULL)
			continue;
		st = column_state(overlay, part, attname);
		if (st->f.exists && !RG_FACTS_REJECT_NULL(st->f))
		{
			RgChange   *ch = column_change(RG_ATTACH_NOT_NULL, st);

			ch->target = get_rel_name(parent);
			changes = lappend(changes, ch);
			*settled = settle(*settled, ch, st);
		}
	}
	return changes;
}

static List *
analyze_alter_table(AlterTableStmt *stmt, RgOverlay *overlay)
{
	List	   *changes = NIL;
	List	   *settled = NIL;
	Oid			relid;
	List	   *rels;
	ListCell   *lc;

	if (overlay->lockmode != NoLock)
		overlay->lockmode = AlterTableGetLockLevel(stmt->cmds);
	switch (stmt->objtype)
	{
		case OBJECT_TABLE:
		case OBJECT_VIEW:
		case OBJECT_MATVIEW:
		case OBJECT_FOREIGN_TABLE:
			relid = resolve_relation(overlay, stmt->relation);
			if (!OidIsValid(relid))
				return NIL;
			rels = relation_and_children(overlay, relid, stmt->relation);
			break;
		case OBJECT_TYPE:
			/* ALTER TYPE ... DROP / ALTER ATTRIBUTE: its typed tables */
			rels = typed_tables(overlay, stmt->relation);
			if (rels == NIL)
				return NIL;
			relid = linitial_oid(rels);
			break;
		default:
			return NIL;
	}

	foreach(lc, commands_in_run_order(stmt->cmds))
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		ListCell   *rc;

		foreach(rc, rels)
		{
			Oid			r = lfirst_oid(rc);
			ColState   *st;

			switch (cmd->subtype)
			{
				case AT_DropColumn:
					/* an inheriting table keeps a column it declares itself */
					if (stmt->objtype != OBJECT_TYPE && r != relid &&
						!dropped_with_parent(r, cmd->name))
						break;
					st = column_state(overlay, r, cmd->name);
					if (st->f.exists)
						changes = lappend(changes, column_change(RG_DROP_COLUMN, st));
					st->f.exists = false;
					st->origin = 0;
					st->origin_name = NULL;
					break;

				case AT_ColumnDefault:
					st = column_state(overlay, r, cmd->name);
					if (!default_yields(cmd->def, st))
					{
						/*
						 * DROP DEFAULT, or a default that may be NULL (SET
						 * DEFAULT NULL, nullif(...)): breaks inserts that
						 * leave c out
						 */
						if (st->f.exists && st->f.own_default &&
							!st->f.other_default && !st->f.type_default)
							settled = settle(settled, column_change(RG_DROP_DEFAULT, st), st);
						st->f.own_default = false;
					}
					else
						st->f.own_default = true;
					break;

				case AT_DropIdentity:
					st = column_state(overlay, r, cmd->name);
					if (st->f.exists && st->f.other_default &&
						!st->f.own_default && !st->f.type_default)
						settled = settle(settled, column_change(RG_DROP_IDENTITY, st), st);
					st->f.other_default = false;
					st->f.identity = '\0';
					break;

				case AT_AddIdentity:
				case AT_SetIdentity:
					st = column_state(overlay, r, cmd->name);
					if (st->f.exists && makes_generated_always(cmd))
						changes = lappend(changes, column_change(RG_GENERATED_ALWAYS, st));
					if (cmd->subtype == AT_AddIdentity)
						st->f.other_default = true;
					st->f.identity = identity_after(cmd, st->f.identity);
					break;

				case AT_SetNotNull:
					st = column_state(overlay, r, cmd->name);
					if (st->f.exists && !st->f.notnull)
					{
						RgChange   *ch = column_change(RG_SET_NOT_NULL, st);

						changes = lappend(changes, ch);
						settled = settle(settled, ch, st);
					}
					st->f.notnull = true;
					break;

				case AT_DropNotNull:
					st = column_state(overlay, r, cmd->name);
					st->f.notnull = false;
					break;

				case AT_AddColumn:
					{
						ColumnDef  *def = castNode(ColumnDef, cmd->def);
						ColState	newst = {0};

						st = column_state(overlay, r, def->colname);
						if (st->f.exists)
							break;	/* IF NOT EXISTS, or an error anyway */
						newst.relid = r;
						newst.attname = def->colname;
						column_def_state(def, &newst);
						st->f = newst.f;
						settled = settle(settled, column_change(RG_ADD_NOT_NULL_COLUMN, st), st);
					}
					break;

				case AT_AlterColumnType:
					st = column_state(overlay, r, cmd->name);
					if (!st->f.exists)
						break;
					if (!type_change_widens(st, castNode(ColumnDef, cmd->def)))
						changes = lappend(changes, column_change(RG_ALTER_TYPE, st));
					{
						/* a domain that rejects NULL tightens the column */
						bool		dom_default;
						RgNullVerdict v = OidIsValid(st->f.typid)
							? rg_type_null_facts(st->f.typid, InvalidOid, &dom_default)
							: RG_ACCEPTS_NULL;

						st->f.type_default = OidIsValid(st->f.typid) && dom_default;
						if (v != RG_ACCEPTS_NULL && !st->f.notnull)
						{
							RgChange   *ch = column_change(RG_SET_NOT_NULL, st);

							changes = lappend(changes, ch);
							settled = settle(settled, ch, st);
						}
						if (v == RG_REJECTS_NULL)
							st->f.notnull = true;
					}
					break;

				case AT_AttachPartition:
					if (r == relid && stmt->objtype == OBJECT_TABLE)
						changes = list_concat(changes,
											  attach_partition(overlay, relid, cmd, &settled));
					break;

				case AT_DetachPartition:
					if (r == relid && stmt->objtype == OBJECT_TABLE)
					{
						Oid			part = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name,
														   NoLock, true);

						if (OidIsValid(part))
							changes = list_concat(changes,
												  partition_leaves(RG_DETACH_PARTITION, part));
					}
					break;

				case AT_DropConstraint:
					{
						DroppedConstraint *dc = palloc(sizeof(DroppedConstraint));

						dc->relid = r;
						dc->conname = cmd->name;
						overlay->dropped = lappend(overlay->dropped, dc);
					}
					break;

				case AT_AddConstraint:
					{
						Constraint *con = castNode(Constraint, cmd->def);
						List	   *cols = NIL;
						RgChangeKind kind = RG_SET_NOT_NULL;
						ListCell   *cc;

						/* NO INHERIT: the inheriting tables are left alone */
						if (r != relid && con->is_no_inherit)
							break;
						if (con->contype == CONSTR_CHECK && CONSTRAINT_IS_ENFORCED(con))
						{
							/* every column it names that it rejects NULL in, or may */
							List	   *names = NIL;

							column_names_walker(con->raw_expr, &names);
							foreach(cc, names)
							{
								st = column_state(overlay, r, strVal(lfirst(cc)));
								if (st->f.exists && !st->f.notnull &&
									check_null_verdict(r, con->raw_expr, st, false) != RG_ACCEPTS_NULL)
									cols = lappend(cols, st->attname);
							}
							kind = RG_CHECK_NOT_NULL;
						}
						else if (con->contype == CONSTR_PRIMARY && con->indexname != NULL)
							cols = index_columns(r, con->indexname);
						else if (con->contype == CONSTR_PRIMARY ||
								 con->contype == CONSTR_NOTNULL)
						{
							foreach(cc, con->keys)
								cols = lappend(cols, strVal(lfirst(cc)));
						}
						foreach(cc, cols)
						{
							const char *col = lfirst(cc);

							st = column_state(overlay, r, col);
							if (st->f.exists && !st->f.notnull)
							{
								RgChange   *ch = column_change(kind, st);

								ch->target = con->conname;
								changes = lappend(changes, ch);
								settled = settle(settled, ch, st);
							}
							if (kind == RG_SET_NOT_NULL)
								st->f.notnull = true;
						}
					}
					break;

				case AT_AlterConstraint:
					if (r == relid)
						changes = list_concat(changes,
											  not_null_inherited(overlay, relid, cmd));
					break;

				default:
					break;
			}
		}
	}
	return settled_changes(changes, settled);
}

/* RENAME COLUMN (or ATTRIBUTE) on each of these relations. */
static List *
rename_columns(RgOverlay *overlay, List *rels, RenameStmt *stmt)
{
	List	   *changes = NIL;
	ListCell   *lc;

	foreach(lc, rels)
	{
		ColState   *st = column_state(overlay, lfirst_oid(lc), stmt->subname);
		RgChange   *ch;

		if (!st->f.exists || st->origin < 0)
			continue;			/* the statement fails on its own */
		ch = column_change(RG_RENAME_COLUMN, st);
		ch->target = stmt->newname;
		changes = lappend(changes, ch);
		rename_column(overlay, st, stmt->newname);
	}
	return changes;
}

static List *
analyze_rename(RenameStmt *stmt, RgOverlay *overlay)
{
	Oid			relid;
	List	   *changes = NIL;
	ListCell   *lc;
	RgChange   *ch;

	switch (stmt->renameType)
	{
		case OBJECT_COLUMN:
			relid = resolve_relation(overlay, stmt->relation);
			if (!OidIsValid(relid) || !column_state(overlay, relid, stmt->subname)->f.exists)
				return NIL;
			return rename_columns(overlay, relation_and_children(overlay, relid, stmt->relation), stmt);

		case OBJECT_ATTRIBUTE:
			/* ALTER TYPE ... RENAME ATTRIBUTE: the columns of its typed tables */
			return rename_columns(overlay, typed_tables(overlay, stmt->relation), stmt);

		case OBJECT_TABLE:
		case OBJECT_VIEW:
		case OBJECT_MATVIEW:
		case OBJECT_FOREIGN_TABLE:
		case OBJECT_INDEX:		/* ALTER INDEX ... RENAME takes any relation */
			relid = resolve_relation(overlay, stmt->relation);
			if (!OidIsValid(relid))
				return NIL;
			touch(overlay, relid, NULL);
			ch = rg_make_change(RG_RENAME_RELATION, relid, NULL);
			ch->target = stmt->newname;
			relation_renaming(overlay, relid)->relname = pstrdup(stmt->newname);
			return list_make1(ch);

		case OBJECT_SCHEMA:
			foreach(lc, relations_in_schema_now(overlay, stmt->subname))
			{
				touch(overlay, lfirst_oid(lc), NULL);
				ch = rg_make_change(RG_RENAME_SCHEMA, lfirst_oid(lc), NULL);
				ch->target = stmt->newname;
				changes = lappend(changes, ch);
				relation_renaming(overlay, lfirst_oid(lc))->nspname = pstrdup(stmt->newname);
			}
			return changes;

		default:
			return NIL;
	}
}

/*
 * The relations an extension owns (pg_depend, deptype 'e'), guarded ones
 * only.
 */
static List *
extension_relations(Oid extoid)
{
	Relation	depend = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *result = NIL;

	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(ExtensionRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(extoid));
	scan = systable_beginscan(depend, DependReferenceIndexId, true, NULL, 2, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);

		if (dep->classid == RelationRelationId && dep->objsubid == 0 &&
			dep->deptype == DEPENDENCY_EXTENSION &&
			rg_relation_is_guarded(dep->objid, NULL))
			result = lappend_oid(result, dep->objid);
	}
	systable_endscan(scan);
	table_close(depend, AccessShareLock);
	return result;
}

/*
 * ALTER EXTENSION e SET SCHEMA s moves every relation the extension owns:
 * each is judged as its own SET SCHEMA.
 */
static List *
extension_set_schema(AlterObjectSchemaStmt *stmt, RgOverlay *overlay)
{
	Oid			extoid = get_extension_oid(strVal(stmt->object), true);
	List	   *changes = NIL;
	ListCell   *lc;

	if (!OidIsValid(extoid))
		return NIL;
	foreach(lc, extension_relations(extoid))
	{
		Oid			relid = lfirst_oid(lc);
		RgChange   *ch;

		if (overlay->lockmode != NoLock)
			LockRelationOid(relid, AccessExclusiveLock);
		touch(overlay, relid, NULL);
		ch = rg_make_change(RG_MOVE_RELATION, relid, NULL);
		ch->target = stmt->newschema;
		relation_renaming(overlay, relid)->nspname = pstrdup(stmt->newschema);
		changes = lappend(changes, ch);
	}
	return changes;
}

static List *
analyze_set_schema(AlterObjectSchemaStmt *stmt, RgOverlay *overlay)
{
	Oid			relid;
	RgChange   *ch;

	switch (stmt->objectType)
	{
		case OBJECT_TABLE:
		case OBJECT_VIEW:
		case OBJECT_MATVIEW:
		case OBJECT_FOREIGN_TABLE:
			break;
		case OBJECT_EXTENSION:
			return extension_set_schema(stmt, overlay);
		default:
			return NIL;
	}
	relid = resolve_relation(overlay, stmt->relation);
	if (!OidIsValid(relid))
		return NIL;
	touch(overlay, relid, NULL);
	ch = rg_make_change(RG_MOVE_RELATION, relid, NULL);
	ch->target = stmt->newschema;
	relation_renaming(overlay, relid)->nspname = pstrdup(stmt->newschema);
	return list_make1(ch);
}

static List *
analyze_drop(DropStmt *stmt, RgOverlay *overlay)
{
	List	   *changes = NIL;
	ListCell   *lc;

	switch (stmt->removeType)
	{
		case OBJECT_TABLE:
		case OBJECT_VIEW:
		case OBJECT_MATVIEW:
		case OBJECT_FOREIGN_TABLE:
			foreach(lc, stmt->objects)
			{
				RangeVar   *rv = makeRangeVarFromNameList(castNode(List, lfirst(lc)));
				Oid			relid = resolve_relation(overlay, rv);

				if (OidIsValid(relid))
				{
					changes = lappend(changes, rg_make_change(RG_DROP_RELATION, relid, NULL));
					changes = list_concat(changes, partition_leaves(RG_DROP_PARTITION, relid));
				}
			}
			break;

		case OBJECT_SCHEMA:
			if (stmt->behavior != DROP_CASCADE)
				break;
			foreach(lc, stmt->objects)
			{
				Oid			nsp = get_namespace_oid(strVal(lfirst(lc)), true);
				ListCell   *rc;

				if (!OidIsValid(nsp))
					continue;
				foreach(rc, relations_in_schema(nsp))
					changes = lappend(changes,
									  rg_make_change(RG_CASCADE_DROP_RELATION, lfirst_oid(rc), NULL));
			}
			break;

		case OBJECT_TYPE:
		case OBJECT_DOMAIN:
			if (stmt->behavior != DROP_CASCADE)
				break;
			foreach(lc, stmt->objects)
			{
				TypeName   *tn = castNode(TypeName, lfirst(lc));
				Type		typ = LookupTypeName(NULL, tn, NULL, true);

				if (typ == NULL)
					continue;
				/* system types cannot be dropped: the statement fails on its own */
				if (!IsCatalogNamespace(((Form_pg_type) GETSTRUCT(typ))->typnamespace))
					changes = list_concat(changes,
										  columns_of_type(((Form_pg_type) GETSTRUCT(typ))->oid));
				ReleaseSysCache(typ);
			}
			break;

		default:
			break;
	}
	return changes;
}

static bool
domain_has_own_default(Oid typid)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	bool		result;

	if (!HeapTupleIsValid(tup))
		return false;
	result = !heap_attisnull(tup, Anum_pg_type_typdefaultbin, NULL);
	ReleaseSysCache(tup);
	return result;
}

/* CHECK (VALUE IS NOT NULL), also as a conjunct */
static bool
checks_value_not_null(Node *expr)
{
	ListCell   *lc;

	foreach(lc, check_notnull_columns(expr))
	{
		if (strcmp(lfirst(lc), "value") == 0)
			return true;
	}
	return false;
}

/* Does a CHECK that ALTER DOMAIN adds reject NULL, or may it? */
static bool
domain_check_rejects_null(Oid typid, Node *raw)
{
	int32		basetypmod = -1;
	Oid			basetype = getBaseTypeAndTypmod(typid, &basetypmod);
	RgNullVerdict verdict;

	if (rg_raw_domain_check_null_verdict(raw, basetype, basetypmod, &verdict))
		return verdict != RG_ACCEPTS_NULL;
	return checks_value_not_null(raw);
}

/*
 * ALTER DOMAIN d SET NOT NULL / DROP DEFAULT / ADD CONSTRAINT CHECK (VALUE IS
 * NOT NULL): the same change to every column of that domain.
 */
static List *
analyze_alter_domain(AlterDomainStmt *stmt, RgOverlay *overlay)
{
	TypeName   *tn = makeTypeNameFromNameList(stmt->typeName);
	Type		typ = LookupTypeName(NULL, tn, NULL, true);
	Oid			typid;
	bool		dom_default;	/* unused: only NOT NULL matters here */
	bool		dom_notnull;
	RgChangeKind kind;
	List	   *changes = NIL;
	ListCell   *lc;

	if (typ == NULL)
		return NIL;
	typid = ((Form_pg_type) GETSTRUCT(typ))->oid;
	if (((Form_pg_type) GETSTRUCT(typ))->typtype != TYPTYPE_DOMAIN ||
		IsCatalogNamespace(((Form_pg_type) GETSTRUCT(typ))->typnamespace))
	{
		/* not a domain, or a system one: the statement fails on its own */
		ReleaseSysCache(typ);
		return NIL;
	}
	ReleaseSysCache(typ);
	rg_type_default_notnull(typid, InvalidOid, &dom_default, &dom_notnull);

	switch (stmt->subtype)
	{
		case 'O':				/* SET NOT NULL */
			if (dom_notnull)
				return NIL;
			kind = RG_SET_NOT_NULL;
			break;
		case 'T':				/* SET / DROP DEFAULT */
			if (!domain_has_own_default(typid) ||
				(stmt->def != NULL && !is_null_constant(stmt->def) &&
				 rg_raw_default_yield(stmt->def, typid, -1, NULL) == RG_YIELDS_VALUE))
				return NIL;
			kind = RG_DROP_DEFAULT;
			break;
		case 'C':				/* ADD CONSTRAINT */
			{
				Constraint *con = castNode(Constraint, stmt->def);

				if (dom_notnull)
					return NIL;
				if (con->contype == CONSTR_NOTNULL)
					kind = RG_SET_NOT_NULL;
				else if (con->contype == CONSTR_CHECK && domain_check_rejects_null(typid, con->raw_expr))
					kind = RG_CHECK_NOT_NULL;
				else
					return NIL;
			}
			break;
		default:
			return NIL;
	}

	foreach(lc, columns_of_type(typid))
	{
		RgChange   *ch = lfirst(lc);
		ColState   *st = column_state(overlay, ch->relid, ch->attname);

		ch->kind = kind;
		if (kind == RG_DROP_DEFAULT)
		{
			bool		chain_default;
			bool		chain_notnull;

			/* left without a default unless it has another one */
			rg_type_default_notnull(get_atttype(ch->relid, ch->attnum), typid,
									  &chain_default, &chain_notnull);
			if (!RG_FACTS_REJECT_NULL(st->f) || st->f.own_default || st->f.other_default || chain_default)
				continue;
		}
		else
		{
			if (st->f.notnull)
				continue;
			ch->has_default = has_default(st);
		}
		changes = lappend(changes, ch);
	}
	return changes;
}

/*
 * CREATE RULE "_RETURN" AS ON SELECT TO t DO INSTEAD SELECT ... turns an
 * (empty) table into a view (PostgreSQL 15 and older): a new relation
 * under the old name, judged like dropping the table.
 */
static List *
analyze_rule(RuleStmt *stmt, RgOverlay *overlay)
{
#if PG_VERSION_NUM < 160000
	Oid			relid;

	if (stmt->event != CMD_SELECT || strcmp(stmt->rulename, ViewSelectRuleName) != 0)
		return NIL;
	relid = resolve_relation(overlay, stmt->relation);
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
		return NIL;
	return list_make1(rg_make_change(RG_TABLE_TO_VIEW, relid, NULL));
#else
	return NIL;
#endif
}

/*
 * A default that disappeared by cascade (DROP SEQUENCE ... CASCADE, DROP
 * FUNCTION ... CASCADE): does the column, after the statement, still exist,
 * NOT NULL, with no default left?  Only then can inserts that leave it out
 * break.
 */
bool
rg_default_is_gone(RgChange *ch)
{
	RgColumnFacts f;

	if (get_rel_relkind(ch->relid) == '\0')
		return false;
	f = rg_column_facts(ch->relid, get_attnum(ch->relid, ch->attname));
	return f.exists && RG_FACTS_REJECT_NULL(f) && !RG_FACTS_HAVE_DEFAULT(f);
}

/* Did the script drop the relation's constraint of that name? */
static bool
constraint_dropped(RgOverlay *overlay, Oid relid, const char *conname)
{
	ListCell   *lc;

	foreach(lc, overlay->dropped)
	{
		DroppedConstraint *dc = lfirst(lc);

		if (dc->relid == relid && strcmp(dc->conname, conname) == 0)
			return true;
	}
	return false;
}

/*
 * The dry run's net effect: is the (undoable) change still in effect once
 * the whole script has run, as the overlay says it leaves the column or
 * relation, compared with the catalog (what was there before the script)?
 */
bool
rg_overlay_leaves(RgOverlay *overlay, RgChange *ch)
{
	ColState   *st = NULL;
	RgColumnFacts before = {0};
	ListCell   *lc;

	if (rg_change_desc(ch->kind)->rule == RG_RULE_USES_RELATION)
	{
		RelState   *rs = relation_renamed(overlay, ch->relid);

		return rs != NULL &&
			(strcmp(rs->relname, get_rel_name(ch->relid)) != 0 ||
			 strcmp(rs->nspname, get_namespace_name(get_rel_namespace(ch->relid))) != 0);
	}

	/* the column it is now: the catalog's one, or the one the script added */
	foreach(lc, overlay->columns)
	{
		ColState   *c = lfirst(lc);

		if (c->relid == ch->relid && c->f.exists &&
			(ch->attnum > 0 ? c->origin == ch->attnum
			 : c->origin == 0 && strcmp(c->attname, ch->attname) == 0))
			st = c;
	}
	if (st == NULL)
		return false;			/* dropped: judged at its statement */
	if (ch->kind == RG_RENAME_COLUMN)
		return strcmp(st->attname, ch->attname) != 0;
	if (ch->attnum > 0)
		before = rg_column_facts(ch->relid, ch->attnum);
	return rg_net_column_change_stays(ch, &before, &st->f,
									  ch->target == NULL ||
									  !constraint_dropped(overlay, ch->relid, ch->target));
}

/*
 * The changes a statement makes that rules must look at.  overlay carries
 * column and relation state from command to command (and statement to
 * statement in a dry run).  In the guard (rg_overlay_new(true)) the
 * relations the statement names are locked as the statement itself would
 * lock them.
 */
List *
rg_analyze_statement(Node *parsetree, RgOverlay *overlay)
{
	rg_stats_count(overlay->lockmode != NoLock ? RG_STAT_STATEMENTS
				   : RG_STAT_DRY_RUN_STATEMENTS);
	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
			return analyze_alter_table((AlterTableStmt *) parsetree, overlay);
		case T_RenameStmt:
			return analyze_rename((RenameStmt *) parsetree, overlay);
		case T_AlterObjectSchemaStmt:
			return analyze_set_schema((AlterObjectSchemaStmt *) parsetree, overlay);
		case T_DropStmt:
			return analyze_drop((DropStmt *) parsetree, overlay);
		case T_AlterDomainStmt:
			return analyze_alter_domain((AlterDomainStmt *) parsetree, overlay);
		case T_RuleStmt:
			return analyze_rule((RuleStmt *) parsetree, overlay);
		default:
			return NIL;
	}
}
