/**
 * Promise.all whose failure does not depend on timing: it waits until every promise has settled
 * and throws the first rejection in argument order. Parallel reads of one unreachable catalog
 * (status, list) otherwise reported whichever request happened to fail first, so the same outage
 * gave different messages from one run to the next.
 */
export async function allInOrder<T extends readonly unknown[]>(promises: readonly [...{ [K in keyof T]: Promise<T[K]> | T[K] }]): Promise<T> {
  const settled = await Promise.allSettled(promises);
  const values: unknown[] = [];
  for (const r of settled) {
    if (r.status === 'rejected') throw r.reason;
    values.push(r.value);
  }
  return values as unknown as T;
}
