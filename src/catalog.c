/*-------------------------------------------------------------------------
 * catalog.c
 *		Questions to the system catalogs that the analysis and the net
 *		effect both ask: is a relation guarded, what does the catalog say of
 *		a column (NOT NULL, defaults, type), does a domain chain give a
 *		default or forbid NULL, does a type change only widen.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "rollguard.h"

PG_FUNCTION_INFO_V1(rollguard_is_guarded);

/*
 * Is this a relation that code can use (table, view, materialized view,
 * foreign table) outside the system's and rollguard's own schemas
 * (pg_catalog, information_schema, TOAST, temporary schemas)?  What the
 * rules guard, what observed usage records, and (rollguard._is_guarded())
 * what an inferred contract takes and a declaration may name.
 */
/*
 * The OIDs of the schemas "rollguard" and "information_schema" (InvalidOid
 * if there is none), kept until any schema changes: every check asks, and
 * a lookup by name hashes the name each time.
 */
static bool own_schemas_valid = false;
static bool own_schemas_callback = false;
static Oid	own_schemas[2];

static void
own_schemas_reset(Datum arg, int cacheid, uint32 hashvalue)
{
	own_schemas_valid = false;
}

static bool
is_own_schema(Oid nsp)
{
	if (!own_schemas_valid)
	{
		if (!own_schemas_callback)
		{
			CacheRegisterSyscacheCallback(NAMESPACEOID, own_schemas_reset, (Datum) 0);
			own_schemas_callback = true;
		}
		own_schemas[0] = get_namespace_oid("rollguard", true);
		own_schemas[1] = get_namespace_oid("information_schema", true);
		own_schemas_valid = true;
	}
	return OidIsValid(nsp) && (nsp == own_schemas[0] || nsp == own_schemas[1]);
}

bool
rg_relation_is_guarded(Oid relid, char *relkind_out)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	char		relkind;
	Oid			nsp;

	if (!HeapTupleIsValid(tup))
		return false;
	relkind = ((Form_pg_class) GETSTRUCT(tup))->relkind;
	nsp = ((Form_pg_class) GETSTRUCT(tup))->relnamespace;
	ReleaseSysCache(tup);
	switch (relkind)
	{
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
		case RELKIND_VIEW:
		case RELKIND_MATVIEW:
		case RELKIND_FOREIGN_TABLE:
			break;
		default:
			return false;
	}
	if (IsCatalogNamespace(nsp) || IsToastNamespace(nsp) ||
		isAnyTempNamespace(nsp) || is_own_schema(nsp))
		return false;
	if (relkind_out)
		*relkind_out = relkind;
	return true;
}

/* rollguard._is_guarded(regclass) RETURNS boolean */
Datum
rollguard_is_guarded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(rg_relation_is_guarded(PG_GETARG_OID(0), NULL));
}

/*
 * Does the type supply a default, or forbid NULL?  A domain's default is its
 * own or, failing that, its base domain's; NOT NULL anywhere down the chain
 * holds.  The domain "skip" counts as having no default (it is losing it).
 */
/* What a domain's own CHECK constraints say of NULL. */
static RgNullVerdict
domain_checks_null_verdict(Oid domainid)
{
	Relation	rel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	RgNullVerdict verdict = RG_ACCEPTS_NULL;

	ScanKeyInit(&key, Anum_pg_constraint_contypid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(domainid));
	scan = systable_beginscan(rel, ConstraintTypidIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Datum		bin;
		bool		isnull;
		RgNullVerdict v;

		if (((Form_pg_constraint) GETSTRUCT(tup))->contype != CONSTRAINT_CHECK)
			continue;
		bin = heap_getattr(tup, Anum_pg_constraint_conbin, RelationGetDescr(rel), &isnull);
		if (isnull)
			continue;
		v = rg_constraint_null_verdict(stringToNode(TextDatumGetCString(bin)), 0);
		if (v > verdict)
			verdict = v;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return verdict;
}

/*
 * The same, telling apart what certainly rejects NULL (NOT NULL anywhere
 * down the chain, a CHECK (VALUE IS NOT NULL) in any spelling) from what
 * may (a CHECK that cannot be told); a default counts only if it yields a
 * value (nullness.c).
 */
RgNullVerdict
rg_type_null_facts(Oid typid, Oid skip, bool *has_default)
{
	RgNullVerdict verdict = RG_ACCEPTS_NULL;

	*has_default = false;
	for (;;)
	{
		HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
		Form_pg_type typ;
		Datum		bin;
		bool		isnull;
		RgNullVerdict v;

		if (!HeapTupleIsValid(tup))
			return verdict;
		typ = (Form_pg_type) GETSTRUCT(tup);
		if (typ->typtype != TYPTYPE_DOMAIN)
		{
			ReleaseSysCache(tup);
			return verdict;
		}
		bin = SysCacheGetAttr(TYPEOID, tup, Anum_pg_type_typdefaultbin, &isnull);
		if (typid != skip && !isnull &&
			rg_default_yield(stringToNode(TextDatumGetCString(bin))) == RG_YIELDS_VALUE)
			*has_default = true;
		if (typ->typnotnull)
			verdict = RG_REJECTS_NULL;
		v = domain_checks_null_verdict(typid);
		if (v > verdict)
			verdict = v;
		typid = typ->typbasetype;
		ReleaseSysCache(tup);
	}
}

void
rg_type_default_notnull(Oid typid, Oid skip, bool *has_default, bool *notnull)
{
	*notnull = rg_type_null_facts(typid, skip, has_default) == RG_REJECTS_NULL;
}

/* Does the column's own default (pg_attrdef) yield a value? */
static bool
own_default_yields(Relation rel, AttrNumber attnum)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;

	if (constr == NULL)
		return false;
	for (int i = 0; i < constr->num_defval; i++)
	{
		if (constr->defval[i].adnum == attnum)
			return rg_default_yield(stringToNode(constr->defval[i].adbin)) == RG_YIELDS_VALUE;
	}
	return false;
}

/* What a pg_attribute row says of its column. */
static RgColumnFacts
facts_of(HeapTuple tup)
{
	RgColumnFacts facts = {0};
	Form_pg_attribute att = (Form_pg_attribute) GETSTRUCT(tup);
	bool		dom_default;
	bool		dom_notnull;

	if (att->attisdropped)
		return facts;
	rg_type_default_notnull(att->atttypid, InvalidOid, &dom_default, &dom_notnull);
	facts.exists = true;
	facts.notnull = att->attnotnull || dom_notnull;
	/*
	 * Whether its own default yields a value, and whether a CHECK or a
	 * partition bound rejects NULL in any spelling (nullness.c)
	 */
	if ((att->atthasdef && att->attgenerated == '\0') || !facts.notnull)
	{
		Relation	rel = try_relation_open(att->attrelid, AccessShareLock);

		if (rel != NULL)
		{
			if (att->atthasdef && att->attgenerated == '\0')
				facts.own_default = own_default_yields(rel, att->attnum);
			if (!facts.notnull)
				facts.rejects_null =
					rg_relation_null_verdict(rel, att->attnum) == RG_REJECTS_NULL;
			relation_close(rel, AccessShareLock);
		}
	}
	facts.other_default = att->attidentity != '\0' || att->attgenerated != '\0';
	facts.type_default = dom_default;
	facts.identity = att->attidentity;
	facts.typid = att->atttypid;
	facts.typmod = att->atttypmod;
	facts.collation = att->attcollation;
	return facts;
}

/*
 * What the catalog says now of column attnum of relid (InvalidAttrNumber:
 * a column that does not exist).
 */
RgColumnFacts
rg_column_facts(Oid relid, AttrNumber attnum)
{
	RgColumnFacts facts = {0};
	HeapTuple	tup;

	if (attnum == InvalidAttrNumber)
		return facts;
	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(attnum));
	if (!HeapTupleIsValid(tup))
		return facts;
	facts = facts_of(tup);
	ReleaseSysCache(tup);
	return facts;
}

/* The same, of the column of that name, and its number (0 if none). */
RgColumnFacts
rg_column_facts_by_name(Oid relid, const char *attname, AttrNumber *attnum)
{
	RgColumnFacts facts = {0};
	HeapTuple	tup = SearchSysCacheAttName(relid, attname);

	*attnum = InvalidAttrNumber;
	if (!HeapTupleIsValid(tup))
		return facts;
	*attnum = ((Form_pg_attribute) GETSTRUCT(tup))->attnum;
	facts = facts_of(tup);
	ReleaseSysCache(tup);
	return facts;
}

/*
 * Widening type changes that code using the column survives: varchar(n) to
 * a larger n or to text, smallint to integer to bigint, numeric to a wider
 * precision (no fewer integer digits, no fewer decimals).
 */
static bool
numeric_digits(int32 typmod, int *precision, int *scale)
{
	if (typmod < (int32) VARHDRSZ)
		return false;
	*precision = ((typmod - VARHDRSZ) >> 16) & 0xffff;
	*scale = (((typmod - VARHDRSZ) & 0x7ff) ^ 1024) - 1024;
	return true;
}

bool
rg_type_widens(Oid oldtype, int32 oldmod, Oid newtype, int32 newmod)
{
	int			p1,
				s1,
				p2,
				s2;

	if (oldtype == newtype && oldmod == newmod)
		return true;
	switch (oldtype)
	{
		case VARCHAROID:
			if (newtype == TEXTOID)
				return true;
			if (newtype == VARCHAROID)
				return newmod < 0 || (oldmod >= 0 && newmod >= oldmod);
			return false;
		case INT2OID:
			return newtype == INT4OID || newtype == INT8OID;
		case INT4OID:
			return newtype == INT8OID;
		case NUMERICOID:
			if (newtype != NUMERICOID)
				return false;
			if (newmod < 0)
				return true;
			if (!numeric_digits(oldmod, &p1, &s1) || !numeric_digits(newmod, &p2, &s2))
				return false;
			return s2 >= s1 && p2 - s2 >= p1 - s1;
		default:
			return false;
	}
}

/*
 * Does a column's type change (before to after) only widen it, keeping its
 * collation?  A new collation changes how old code's lookups compare and
 * what a unique index lets in.
 */
bool
rg_column_type_widens(const RgColumnFacts *before, const RgColumnFacts *after)
{
	return before->collation == after->collation &&
		rg_type_widens(before->typid, before->typmod, after->typid, after->typmod);
}

static int
column_order(const ListCell *a, const ListCell *b)
{
	const ObjectAddress *x = lfirst(a);
	const ObjectAddress *y = lfirst(b);

	if (x->objectId != y->objectId)
		return x->objectId < y->objectId ? -1 : 1;
	return x->objectSubId - y->objectSubId;
}

/*
 * Every column of a guarded relation whose type is typid or a domain built
 * on it (directly or through other domains), as a list of ObjectAddress
 * (classId pg_class, objectId the relation, objectSubId the column):
 * what DROP TYPE / DROP DOMAIN ... CASCADE removes, and what ALTER DOMAIN
 * changes.  Found as PostgreSQL finds them, through pg_depend: a column
 * depends on its type, a domain on its base type.
 */
List *
rg_columns_of_type(Oid typid)
{
	List	   *types = list_make1_oid(typid);
	List	   *columns = NIL;
	Relation	depend = table_open(DependRelationId, AccessShareLock);

	/* types grows while it is walked: each domain found is walked in turn */
	for (int i = 0; i < list_length(types); i++)
	{
		Oid			type = list_nth_oid(types, i);
		ScanKeyData key[2];
		SysScanDesc scan;
		HeapTuple	tup;

		ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(TypeRelationId));
		ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(type));
		scan = systable_beginscan(depend, DependReferenceIndexId, true, NULL, 2, key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);

			if (dep->classid == TypeRelationId && dep->objsubid == 0 &&
				!list_member_oid(types, dep->objid))
			{
				HeapTuple	typtup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(dep->objid));

				if (HeapTupleIsValid(typtup))
				{
					Form_pg_type t = (Form_pg_type) GETSTRUCT(typtup);

					if (t->typtype == TYPTYPE_DOMAIN && t->typbasetype == type)
						types = lappend_oid(types, dep->objid);
					ReleaseSysCache(typtup);
				}
			}
			else if (dep->classid == RelationRelationId && dep->objsubid > 0 &&
					 get_atttype(dep->objid, dep->objsubid) == type &&
					 rg_relation_is_guarded(dep->objid, NULL))
			{
				ObjectAddress *col = palloc(sizeof(ObjectAddress));

				col->classId = RelationRelationId;
				col->objectId = dep->objid;
				col->objectSubId = dep->objsubid;
				columns = lappend(columns, col);
			}
		}
		systable_endscan(scan);
	}
	table_close(depend, AccessShareLock);
	/* in creation order (messages name the first) */
	list_sort(columns, column_order);
	return columns;
}
