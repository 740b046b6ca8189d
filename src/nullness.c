/*-------------------------------------------------------------------------
 * nullness.c
 *		What a column accepts and what it gets, judged by the property, not
 *		by the spelling: does a default yield a value, and does a CHECK
 *		constraint, a domain or a partition bound reject NULL?
 *
 * A default "yields a value" when it cannot be NULL: a non-NULL constant;
 * an expression without volatile functions that evaluates (now, in a
 * subtransaction) to a non-NULL value; a volatile call (nextval(),
 * gen_random_uuid(), clock_timestamp()) of a strict function written in C
 * whose arguments all yield values; a cast of one; a COALESCE with one.
 * Anything else -- nullif(now(), now()), a CASE, a PL/pgSQL function --
 * may be NULL, and counts as no default: the rules refuse when in doubt.
 *
 * A constraint "rejects NULL in column c" when, with c NULL, it evaluates
 * to false (CHECK passes on NULL): c IS NOT NULL, c IS DISTINCT FROM NULL,
 * coalesce(c, '') <> '', a range partition's bound.  It "may reject NULL"
 * when, with c NULL, the outcome still depends on other columns and can be
 * false (c IS NOT NULL OR d IS NOT NULL), or cannot be told: the rules
 * treat that as rejecting.  "a > 0", "a <= b", "a IS NULL OR a > 0" accept
 * NULL in a.
 *
 * Expressions are cooked and evaluated as PostgreSQL would, inside an
 * internal subtransaction: an expression that cannot be cooked or fails to
 * evaluate is in doubt, never an error of the statement.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/heap.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_relation.h"
#include "parser/parse_utilcmd.h"
#include "partitioning/partbounds.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "compat.h"
#include "rollguard.h"

/*
 * Runs fn(arg) in an internal subtransaction: true if it ended normally,
 * false if it raised an error (which is discarded).  What fn allocates in
 * the caller's memory context stays.
 */
static bool
try_in_subtransaction(void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
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

/* Evaluating an expression without variables: is the result NULL, false? */
typedef struct Evaluation
{
	Expr	   *expr;
	bool		isnull;
	bool		value;			/* boolean expressions */
	bool		is_bool;
} Evaluation;

static void
evaluate_cb(void *arg)
{
	Evaluation *ev = arg;
	EState	   *estate = CreateExecutorState();
	ExprState  *state = ExecPrepareExpr(ev->expr, estate);
	Datum		d;

	d = ExecEvalExprSwitchContext(state, GetPerTupleExprContext(estate), &ev->isnull);
	if (ev->is_bool && !ev->isnull)
		ev->value = DatumGetBool(d);
	FreeExecutorState(estate);
}

/* Can evaluate_cb run it: no variables, nothing volatile, nothing for a
 * domain's value? */
static bool
contain_value_placeholder_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, CoerceToDomainValue) || IsA(node, Param))
		return true;
	return expression_tree_walker(node, contain_value_placeholder_walker, context);
}

static bool
evaluable(Node *expr)
{
	return !contain_var_clause(expr) && !contain_volatile_functions(expr) &&
		!contain_value_placeholder_walker(expr, NULL);
}

/*-------------------------------------------------------------------------
 * Defaults
 *-------------------------------------------------------------------------
 */

/* A function written in C (built in, or an extension's), and strict. */
static bool
strict_c_function(Oid funcid)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	bool		result;

	if (!HeapTupleIsValid(tup))
		return false;
	result = ((Form_pg_proc) GETSTRUCT(tup))->proisstrict &&
		(((Form_pg_proc) GETSTRUCT(tup))->prolang == INTERNALlanguageId ||
		 ((Form_pg_proc) GETSTRUCT(tup))->prolang == ClanguageId);
	ReleaseSysCache(tup);
	return result;
}

static RgYield yield_of(Node *expr);

static RgYield
all_args_yield(List *args)
{
	ListCell   *lc;

	foreach(lc, args)
	{
		if (yield_of(lfirst(lc)) != RG_YIELDS_VALUE)
			return RG_YIELDS_UNKNOWN;
	}
	return RG_YIELDS_VALUE;
}

static RgYield
yield_of(Node *expr)
{
	if (expr == NULL)
		return RG_YIELDS_NULL;
	if (IsA(expr, Const))
		return ((Const *) expr)->constisnull ? RG_YIELDS_NULL : RG_YIELDS_VALUE;
	if (evaluable(expr))
	{
		Evaluation	ev = {.expr = (Expr *) expr};

		if (!try_in_subtransaction(evaluate_cb, &ev))
			return RG_YIELDS_UNKNOWN;
		return ev.isnull ? RG_YIELDS_NULL : RG_YIELDS_VALUE;
	}
	switch (nodeTag(expr))
	{
		case T_RelabelType:
			return yield_of((Node *) ((RelabelType *) expr)->arg);
		case T_CoerceViaIO:
			return yield_of((Node *) ((CoerceViaIO *) expr)->arg);
		case T_ArrayCoerceExpr:
			return yield_of((Node *) ((ArrayCoerceExpr *) expr)->arg);
		case T_CoerceToDomain:
			/* a domain's checks can fail, not turn a value into NULL */
			return yield_of((Node *) ((CoerceToDomain *) expr)->arg);
		case T_CoalesceExpr:
			{
				ListCell   *lc;

				foreach(lc, ((CoalesceExpr *) expr)->args)
				{
					if (yield_of(lfirst(lc)) == RG_YIELDS_VALUE)
						return RG_YIELDS_VALUE;
				}
				return RG_YIELDS_UNKNOWN;
			}
		case T_FuncExpr:
			if (!strict_c_function(((FuncExpr *) expr)->funcid))
				return RG_YIELDS_UNKNOWN;
			return all_args_yield(((FuncExpr *) expr)->args);
		case T_OpExpr:
			set_opfuncid((OpExpr *) expr);
			if (!strict_c_function(((OpExpr *) expr)->opfuncid))
				return RG_YIELDS_UNKNOWN;
			return all_args_yield(((OpExpr *) expr)->args);
		default:
			return RG_YIELDS_UNKNOWN;
	}
}

/* A cooked default (pg_attrdef.adbin, a domain's typdefaultbin). */
RgYield
rg_default_yield(Node *cooked)
{
	if (cooked == NULL)
		return RG_YIELDS_NULL;
	return yield_of(eval_const_expressions(NULL, cooked));
}

typedef struct CookDefault
{
	Node	   *raw;
	Oid			typid;
	int32		typmod;
	const char *attname;
	Node	   *cooked;
} CookDefault;

static void
cook_default_cb(void *arg)
{
	CookDefault *cd = arg;
	ParseState *pstate = make_parsestate(NULL);

	/* the parser may scribble on what it transforms: the statement's own
	 * tree stays as it was */
	cd->cooked = cookDefault(pstate, copyObject(cd->raw), cd->typid, cd->typmod,
							 cd->attname, '\0');
}

/*
 * A default as a statement writes it (SET DEFAULT, ADD COLUMN ... DEFAULT,
 * ALTER DOMAIN ... SET DEFAULT), for a column or domain of type typid.
 */
RgYield
rg_raw_default_yield(Node *raw, Oid typid, int32 typmod, const char *attname)
{
	CookDefault cd = {raw, typid, typmod, attname, NULL};

	if (raw == NULL)
		return RG_YIELDS_NULL;
	if (!OidIsValid(typid) || !try_in_subtransaction(cook_default_cb, &cd))
		return RG_YIELDS_UNKNOWN;
	return rg_default_yield(cd.cooked);
}

/*-------------------------------------------------------------------------
 * Constraints
 *-------------------------------------------------------------------------
 */

/* Can a (constant-folded) boolean expression come out false, or true? */
static bool can_be_true(Node *expr);

static bool
can_be_false(Node *expr)
{
	ListCell   *lc;

	if (IsA(expr, Const))
		return !((Const *) expr)->constisnull && !DatumGetBool(((Const *) expr)->constvalue);
	if (IsA(expr, BoolExpr))
	{
		BoolExpr   *b = (BoolExpr *) expr;

		switch (b->boolop)
		{
			case AND_EXPR:
				foreach(lc, b->args)
					if (can_be_false(lfirst(lc)))
					return true;
				return false;
			case OR_EXPR:
				foreach(lc, b->args)
					if (!can_be_false(lfirst(lc)))
					return false;
				return true;
			case NOT_EXPR:
				return can_be_true(linitial(b->args));
		}
	}
	return true;				/* depends on what is not known */
}

static bool
can_be_true(Node *expr)
{
	ListCell   *lc;

	if (IsA(expr, Const))
		return !((Const *) expr)->constisnull && DatumGetBool(((Const *) expr)->constvalue);
	if (IsA(expr, BoolExpr))
	{
		BoolExpr   *b = (BoolExpr *) expr;

		switch (b->boolop)
		{
			case AND_EXPR:
				foreach(lc, b->args)
					if (!can_be_true(lfirst(lc)))
					return false;
				return true;
			case OR_EXPR:
				foreach(lc, b->args)
					if (can_be_true(lfirst(lc)))
					return true;
				return false;
			case NOT_EXPR:
				return can_be_false(linitial(b->args));
		}
	}
	return true;
}

/*
 * What a boolean constraint expression, in which the column's value has
 * already been replaced by NULL, says of NULL.
 */
static RgNullVerdict
verdict_of(Node *expr)
{
	expr = eval_const_expressions(NULL, expr);
	if (IsA(expr, Const))
		return !((Const *) expr)->constisnull && !DatumGetBool(((Const *) expr)->constvalue)
			? RG_REJECTS_NULL : RG_ACCEPTS_NULL;
	if (evaluable(expr))
	{
		Evaluation	ev = {.expr = (Expr *) expr, .is_bool = true};

		if (!try_in_subtransaction(evaluate_cb, &ev))
			return RG_MAY_REJECT_NULL;
		return !ev.isnull && !ev.value ? RG_REJECTS_NULL : RG_ACCEPTS_NULL;
	}
	return can_be_false(expr) ? RG_MAY_REJECT_NULL : RG_ACCEPTS_NULL;
}

/* Replaces column attnum of range table entry 1 (or, attnum 0, a domain's
 * VALUE) by NULL. */
typedef struct NullFor
{
	AttrNumber	attnum;
} NullFor;

static Node *
null_for_mutator(Node *node, void *context)
{
	NullFor    *nf = context;

	if (node == NULL)
		return NULL;
	if ((nf->attnum > 0 && IsA(node, Var) && ((Var *) node)->varno == 1 &&
		 ((Var *) node)->varlevelsup == 0 && ((Var *) node)->varattno == nf->attnum) ||
		(nf->attnum == 0 && IsA(node, CoerceToDomainValue)))
		return (Node *) makeNullConst(exprType(node), exprTypmod(node), exprCollation(node));
	return expression_tree_mutator(node, null_for_mutator, context);
}

/*
 * What a cooked constraint (CHECK, a partition's bound: variables of range
 * table entry 1; a domain's CHECK: attnum 0) says of NULL in column attnum.
 */
RgNullVerdict
rg_constraint_null_verdict(Node *cooked, AttrNumber attnum)
{
	NullFor		nf = {attnum};

	return verdict_of(null_for_mutator(copyObject(cooked), &nf));
}

/* The stronger of two verdicts. */
static RgNullVerdict
stronger(RgNullVerdict a, RgNullVerdict b)
{
	return a > b ? a : b;
}

/*
 * A CHECK constraint as a statement writes it (ADD CONSTRAINT ... CHECK,
 * a column's CHECK in ADD COLUMN), cooked against the relation.  newcol,
 * if not NULL, names a column the statement adds (not in the catalog
 * yet): it stands for NULL, of type newtype.
 */
typedef struct CookCheck
{
	Oid			relid;
	Node	   *raw;
	const char *newcol;
	Oid			newtype;
	int32		newtypmod;
	Node	   *cooked;
} CookCheck;

static Node *
new_column_hook(ParseState *pstate, ColumnRef *cref)
{
	CookCheck  *cc = pstate->p_ref_hook_state;
	Node	   *last = llast(cref->fields);

	if (list_length(cref->fields) == 1 && IsA(last, String) &&
		strcmp(strVal(last), cc->newcol) == 0)
		return (Node *) makeNullConst(cc->newtype, cc->newtypmod,
									  get_typcollation(cc->newtype));
	return NULL;
}

static void
cook_check_cb(void *arg)
{
	CookCheck  *cc = arg;
	ParseState *pstate = make_parsestate(NULL);
	Relation	rel = NULL;
	Node	   *expr;

	/* a domain's CHECK has no relation: VALUE is its only column */
	if (OidIsValid(cc->relid))
	{
		ParseNamespaceItem *nsitem;

		rel = relation_open(cc->relid, AccessShareLock);
		nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL, false, true);
		addNSItemToQuery(pstate, nsitem, true, true, true);
	}
	if (cc->newcol != NULL)
	{
		pstate->p_pre_columnref_hook = new_column_hook;
		pstate->p_ref_hook_state = cc;
	}
	expr = transformExpr(pstate, copyObject(cc->raw), EXPR_KIND_CHECK_CONSTRAINT);
	expr = coerce_to_boolean(pstate, expr, "CHECK");
	assign_expr_collations(pstate, expr);
	cc->cooked = expr;
	if (rel != NULL)
		relation_close(rel, NoLock);
}

/*
 * A CHECK that a statement adds to relid: what it says of NULL in column
 * attnum (an existing column), or in the new column newcol of type
 * newtype (attnum 0).  False if it cannot be cooked (it names a column the
 * statement adds, say): the caller falls back on what the text says.
 */
bool
rg_raw_check_null_verdict(Oid relid, Node *raw, AttrNumber attnum,
						  const char *newcol, Oid newtype, int32 newtypmod,
						  RgNullVerdict *verdict)
{
	CookCheck	cc = {relid, raw, newcol, newtype, newtypmod, NULL};

	if (!try_in_subtransaction(cook_check_cb, &cc))
		return false;
	*verdict = newcol != NULL ? verdict_of(cc.cooked)
		: rg_constraint_null_verdict(cc.cooked, attnum);
	return true;
}

/* A CHECK that ALTER DOMAIN adds to a domain over basetype. */
bool
rg_raw_domain_check_null_verdict(Node *raw, Oid basetype, int32 basetypmod,
								 RgNullVerdict *verdict)
{
	CookCheck	cc = {InvalidOid, raw, "value", basetype, basetypmod, NULL};

	if (!try_in_subtransaction(cook_check_cb, &cc))
		return false;
	*verdict = verdict_of(cc.cooked);
	return true;
}

/*
 * What the CHECK constraints of rel (enforced ones, valid or NOT VALID:
 * both hold for new rows), and its partition bound if it is a partition,
 * say of NULL in column attnum.
 */
RgNullVerdict
rg_relation_null_verdict(Relation rel, AttrNumber attnum)
{
	RgNullVerdict verdict = RG_ACCEPTS_NULL;
	TupleConstr *constr = RelationGetDescr(rel)->constr;

	if (constr != NULL)
	{
		for (int i = 0; i < constr->num_check; i++)
		{
			ConstrCheck *check = &constr->check[i];
			Node	   *expr;
			Bitmapset  *attnos = NULL;

			if (!RG_CONSTR_CHECK_ENFORCED(check))
				continue;
			expr = stringToNode(check->ccbin);
			pull_varattnos(expr, 1, &attnos);
			if (!bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, attnos))
				continue;
			verdict = stronger(verdict, rg_constraint_null_verdict(expr, attnum));
		}
	}
	if (rel->rd_rel->relispartition)
	{
		Expr	   *qual = get_partition_qual_relid(RelationGetRelid(rel));

		if (qual != NULL)
			verdict = stronger(verdict, rg_constraint_null_verdict((Node *) qual, attnum));
	}
	return verdict;
}

/*
 * ATTACH PARTITION: what the partition's new bound (raw, as written) says
 * of NULL in each of its columns.  Returns a list of the column numbers
 * (of the partition) that it rejects or may reject NULL in; NIL if the
 * bound cannot be read (the statement fails on its own).
 */
typedef struct AttachBound
{
	Oid			parent;
	Oid			partition;
	PartitionBoundSpec *bound;
	List	   *qual;
} AttachBound;

static void
attach_bound_cb(void *arg)
{
	AttachBound *ab = arg;
	ParseState *pstate = make_parsestate(NULL);
	Relation	parent = relation_open(ab->parent, AccessShareLock);
	Relation	part = relation_open(ab->partition, AccessShareLock);
	PartitionBoundSpec *spec;

	spec = transformPartitionBound(pstate, parent, copyObject(ab->bound));
	ab->qual = map_partition_varattnos(get_qual_from_partbound(parent, spec), 1,
									   part, parent);
	relation_close(part, NoLock);
	relation_close(parent, NoLock);
}

List *
rg_attach_rejects_null(Oid parent, Oid partition, PartitionBoundSpec *bound)
{
	AttachBound ab = {parent, partition, bound, NIL};
	Bitmapset  *attnos = NULL;
	Node	   *qual;
	List	   *result = NIL;
	int			i = -1;

	/* not a partitioned table, or not a table to attach: the statement
	 * fails on its own (and the bound has no key to be read against) */
	if (get_rel_relkind(parent) != RELKIND_PARTITIONED_TABLE)
		return NIL;
	switch (get_rel_relkind(partition))
	{
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
		case RELKIND_FOREIGN_TABLE:
			break;
		default:
			return NIL;
	}
	if (!try_in_subtransaction(attach_bound_cb, &ab) || ab.qual == NIL)
		return NIL;
	qual = (Node *) make_ands_explicit(ab.qual);
	pull_varattnos(qual, 1, &attnos);
	while ((i = bms_next_member(attnos, i)) >= 0)
	{
		AttrNumber	attnum = i + FirstLowInvalidHeapAttributeNumber;

		if (attnum > 0 && rg_constraint_null_verdict(qual, attnum) != RG_ACCEPTS_NULL)
			result = lappend_int(result, attnum);
	}
	return result;
}
