//! Request data into Python objects.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

use crate::request::RequestHeaders;

/// A JSON value as `json.loads` would have produced it (integers of any size stay exact).
pub fn json_to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => pyo3::types::PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(number) => {
            if let Some(i) = number.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = number.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                let text = number.to_string();
                if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                    // Beyond 64 bits: let Python parse the digits, as json.loads does.
                    py.get_type::<pyo3::types::PyInt>().call1((text,))?
                } else {
                    number
                        .as_f64()
                        .unwrap_or(f64::NAN)
                        .into_pyobject(py)?
                        .into_any()
                }
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, json_to_python(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

pub fn headers_to_python<'py>(
    py: Python<'py>,
    headers: &RequestHeaders,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, value) in headers.iter() {
        dict.set_item(name, value)?;
    }
    Ok(dict)
}
