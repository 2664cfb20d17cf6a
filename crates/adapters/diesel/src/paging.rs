//! Pages of a listing, cut the same way on both backends: fetch one row
//! more than the page holds, and its presence is `has_more`.

use colloquy_ports::Page;

use crate::error::StoreError;

/// How many rows to fetch for a page of `limit`.
pub(crate) fn with_lookahead(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1)
}

/// Splits a page's rows from the look-ahead row fetched to learn `has_more`.
pub(crate) fn into_page<R, T>(
    mut rows: Vec<R>,
    limit: usize,
    convert: impl Fn(R) -> Result<T, StoreError>,
) -> Result<Page<T>, StoreError> {
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let items = rows.into_iter().map(convert).collect::<Result<_, _>>()?;
    Ok(Page { items, has_more })
}
