//! Request data into Python objects.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

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

/// A value a snippet passes to Odoo, as JSON: None, booleans, numbers, strings, lists,
/// tuples and dicts with string keys. Anything else is a TypeError naming its type.
pub fn python_to_json(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    use pyo3::types::{PyBool, PyFloat, PyInt, PyString, PyTuple};
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(flag) = value.cast::<PyBool>() {
        return Ok(Value::Bool(flag.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(small) = value.extract::<i64>() {
            return Ok(Value::from(small));
        }
        let digits = value.str()?.to_string();
        return serde_json::from_str(&digits)
            .map_err(|_| pyo3::exceptions::PyValueError::new_err("integer too large for Odoo"));
    }
    if let Ok(number) = value.cast::<PyFloat>() {
        return Ok(serde_json::Number::from_f64(number.value()).map_or(Value::Null, Value::Number));
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(Value::String(text.to_str()?.to_string()));
    }
    if let Ok(list) = value.cast::<PyList>() {
        return list.iter().map(|item| python_to_json(&item)).collect();
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return tuple.iter().map(|item| python_to_json(&item)).collect();
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = serde_json::Map::new();
        for (key, item) in dict.iter() {
            let key = key.cast::<PyString>().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(
                    "dictionary keys sent to Odoo must be strings",
                )
            })?;
            map.insert(key.to_str()?.to_string(), python_to_json(&item)?);
        }
        return Ok(Value::Object(map));
    }
    let type_name = value.get_type().name()?.to_string();
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "cannot send a {type_name} to Odoo (use numbers, text, lists and dicts)"
    )))
}
