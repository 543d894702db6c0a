// placeholder: replaced by the folio kernels
export function folio_version(): i32 { return 0; }
