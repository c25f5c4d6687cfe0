//! XML-RPC over `/xmlrpc/2/common` and `/xmlrpc/2/object`.
//!
//! The small part of XML-RPC Odoo uses, written on quick-xml: values are mapped to JSON
//! values so that every transport returns the same shapes. Odoo's marshaller refuses
//! `None`, so `null` is sent as `false`, which is how Odoo itself spells "empty".

use async_trait::async_trait;
use quick_xml::events::Event;
use serde_json::{Map, Number, Value};

use super::error::{OdooError, ServerError};
use super::transport::{
    Call, Credentials, Http, Protocol, Session, Transport, authenticate_args, execute_kw_args,
};

const COMMON: &str = "/xmlrpc/2/common";
const OBJECT: &str = "/xmlrpc/2/object";

pub(crate) struct XmlRpc {
    http: Http,
}

impl XmlRpc {
    pub fn new(http: Http) -> Self {
        Self { http }
    }

    async fn call(&self, path: &str, method: &str, params: &[Value]) -> Result<Value, OdooError> {
        let body = encode_call(method, params);
        let request = self
            .http
            .post(path)
            .header("Content-Type", "text/xml")
            .body(body);
        let (status, body) = self.http.send(request, path).await?;
        if status != 200 {
            return Err(self.http.status_error(path, status, &body));
        }
        match decode_response(&body) {
            Ok(Response::Value(value)) => Ok(value),
            Ok(Response::Fault { code, text }) => Err(OdooError::Server(fault_error(code, text))),
            Err(reason) => Err(self.http.protocol_error(path, reason)),
        }
    }
}

#[async_trait]
impl Transport for XmlRpc {
    fn protocol(&self) -> Protocol {
        Protocol::XmlRpc
    }

    async fn version(&self) -> Result<Value, OdooError> {
        self.call(COMMON, "version", &[]).await
    }

    async fn authenticate(&self, credentials: &Credentials) -> Result<Option<i64>, OdooError> {
        let uid = self
            .call(COMMON, "authenticate", &authenticate_args(credentials))
            .await?;
        Ok(uid.as_i64().filter(|uid| *uid > 0))
    }

    async fn execute(&self, session: &Session, call: &Call) -> Result<Value, OdooError> {
        self.call(OBJECT, "execute_kw", &execute_kw_args(session, call))
            .await
    }
}

/// Odoo's fault codes (`odoo/service/wsgi_server.py`): 2 user errors (UserError and its
/// subclasses), 3 AccessDenied, 4 AccessError, 1 anything else with the traceback as text.
fn fault_error(code: i64, text: String) -> ServerError {
    let named = |name: &str| ServerError {
        name: name.to_string(),
        message: text.clone(),
    };
    match code {
        2 => named("odoo.exceptions.UserError"),
        3 => named("odoo.exceptions.AccessDenied"),
        4 => named("odoo.exceptions.AccessError"),
        _ => from_traceback(&text).unwrap_or_else(|| named("odoo.exceptions.UnknownError")),
    }
}

/// The exception line of a Python traceback: `odoo.exceptions.MissingError: message`.
fn from_traceback(text: &str) -> Option<ServerError> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let (name, message) = line.split_once(": ").unwrap_or((line, ""));
    let is_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
    if !is_name {
        return None;
    }
    let name = if name.contains('.') {
        name.to_string()
    } else {
        format!("builtins.{name}")
    };
    Some(ServerError {
        name,
        message: message.to_string(),
    })
}

pub(crate) fn encode_call(method: &str, params: &[Value]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<methodCall><methodName>");
    xml.push_str(&quick_xml::escape::escape(method));
    xml.push_str("</methodName><params>");
    for param in params {
        xml.push_str("<param>");
        encode_value(&mut xml, param);
        xml.push_str("</param>");
    }
    xml.push_str("</params></methodCall>\n");
    xml
}

fn encode_value(xml: &mut String, value: &Value) {
    xml.push_str("<value>");
    match value {
        Value::Null | Value::Bool(false) => xml.push_str("<boolean>0</boolean>"),
        Value::Bool(true) => xml.push_str("<boolean>1</boolean>"),
        Value::Number(number) => match number.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => xml.push_str(&format!("<int>{i}</int>")),
            Some(i) => xml.push_str(&format!("<i8>{i}</i8>")),
            None => xml.push_str(&format!(
                "<double>{}</double>",
                number.as_f64().unwrap_or_default()
            )),
        },
        Value::String(text) => {
            xml.push_str("<string>");
            xml.push_str(&quick_xml::escape::escape(text.as_str()));
            xml.push_str("</string>");
        }
        Value::Array(items) => {
            xml.push_str("<array><data>");
            for item in items {
                encode_value(xml, item);
            }
            xml.push_str("</data></array>");
        }
        Value::Object(map) => {
            xml.push_str("<struct>");
            for (name, item) in map {
                xml.push_str("<member><name>");
                xml.push_str(&quick_xml::escape::escape(name.as_str()));
                xml.push_str("</name>");
                encode_value(xml, item);
                xml.push_str("</member>");
            }
            xml.push_str("</struct>");
        }
    }
    xml.push_str("</value>");
}

#[derive(Debug, PartialEq)]
pub(crate) enum Response {
    Value(Value),
    Fault { code: i64, text: String },
}

#[derive(Debug, PartialEq)]
enum Token {
    Open(String),
    Close(String),
    Empty(String),
    Text(String),
}

fn tokenize(xml: &str) -> Result<Vec<Token>, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut tokens = Vec::new();
    let mut text = String::new();
    let flush = |text: &mut String, tokens: &mut Vec<Token>| {
        if !text.is_empty() {
            tokens.push(Token::Text(std::mem::take(text)));
        }
    };
    let name = |raw: &str| raw.to_string();
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("invalid XML: {e}"))?
        {
            Event::Start(start) => {
                flush(&mut text, &mut tokens);
                tokens.push(Token::Open(name(start.name().as_ref())));
            }
            Event::End(end) => {
                flush(&mut text, &mut tokens);
                tokens.push(Token::Close(name(end.name().as_ref())));
            }
            Event::Empty(empty) => {
                flush(&mut text, &mut tokens);
                tokens.push(Token::Empty(name(empty.name().as_ref())));
            }
            Event::Text(chunk) => text.push_str(&chunk.xml10_content()),
            Event::CData(chunk) => text.push_str(&chunk.xml10_content()),
            Event::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|e| format!("invalid character reference: {e}"))?
                {
                    Some(c) => c,
                    None => match &*reference {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(format!("unknown entity &{other};")),
                    },
                };
                text.push(resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    flush(&mut text, &mut tokens);
    Ok(tokens)
}

pub(crate) fn decode_response(xml: &str) -> Result<Response, String> {
    let tokens = tokenize(xml)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
    };
    parser.open("methodResponse")?;
    if parser.try_open("fault") {
        let fault = parser.value()?;
        let code = fault.get("faultCode").and_then(Value::as_i64).unwrap_or(1);
        let text = fault
            .get("faultString")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        return Ok(Response::Fault { code, text });
    }
    parser.open("params")?;
    parser.open("param")?;
    let value = parser.value()?;
    parser.close("param")?;
    parser.close("params")?;
    Ok(Response::Value(value))
}

struct Parser<'t> {
    tokens: &'t [Token],
    at: usize,
}

impl Parser<'_> {
    /// Whitespace between elements carries no meaning.
    fn skip_blank(&mut self) {
        while let Some(Token::Text(text)) = self.tokens.get(self.at) {
            if !text.trim().is_empty() {
                break;
            }
            self.at += 1;
        }
    }

    fn try_open(&mut self, name: &str) -> bool {
        self.skip_blank();
        if matches!(self.tokens.get(self.at), Some(Token::Open(n)) if n == name) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn open(&mut self, name: &str) -> Result<(), String> {
        if self.try_open(name) {
            Ok(())
        } else {
            Err(format!(
                "expected <{name}>, found {:?}",
                self.tokens.get(self.at)
            ))
        }
    }

    fn close(&mut self, name: &str) -> Result<(), String> {
        self.skip_blank();
        match self.tokens.get(self.at) {
            Some(Token::Close(n)) if n == name => {
                self.at += 1;
                Ok(())
            }
            other => Err(format!("expected </{name}>, found {other:?}")),
        }
    }

    fn text_until(&mut self, name: &str) -> Result<String, String> {
        let text = match self.tokens.get(self.at) {
            Some(Token::Text(text)) => {
                self.at += 1;
                text.clone()
            }
            _ => String::new(),
        };
        self.close(name)?;
        Ok(text)
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_blank();
        if matches!(self.tokens.get(self.at), Some(Token::Empty(n)) if n == "value") {
            self.at += 1;
            return Ok(Value::String(String::new()));
        }
        self.open("value")?;
        // An untyped value is a string, whitespace included.
        if let Some(Token::Text(text)) = self.tokens.get(self.at)
            && matches!(self.tokens.get(self.at + 1), Some(Token::Close(n)) if n == "value")
        {
            self.at += 2;
            return Ok(Value::String(text.clone()));
        }
        self.skip_blank();
        let value = match self.tokens.get(self.at) {
            Some(Token::Close(n)) if n == "value" => {
                self.at += 1;
                return Ok(Value::String(String::new()));
            }
            Some(Token::Empty(kind)) => {
                self.at += 1;
                match kind.as_str() {
                    "nil" => Value::Null,
                    "string" | "base64" => Value::String(String::new()),
                    "array" => Value::Array(Vec::new()),
                    "struct" => Value::Object(Map::new()),
                    other => return Err(format!("empty <{other}/> has no value")),
                }
            }
            Some(Token::Open(kind)) => {
                let kind = kind.clone();
                self.at += 1;
                self.typed(&kind)?
            }
            other => return Err(format!("unexpected {other:?} in <value>")),
        };
        self.close("value")?;
        Ok(value)
    }

    fn typed(&mut self, kind: &str) -> Result<Value, String> {
        Ok(match kind {
            "string" | "dateTime.iso8601" | "base64" => Value::String(self.text_until(kind)?),
            "int" | "i4" | "i8" => {
                let text = self.text_until(kind)?;
                let number: i64 = text
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad integer {text:?}"))?;
                Value::from(number)
            }
            "boolean" => {
                let text = self.text_until(kind)?;
                match text.trim() {
                    "1" => Value::Bool(true),
                    "0" => Value::Bool(false),
                    other => return Err(format!("bad boolean {other:?}")),
                }
            }
            "double" => {
                let text = self.text_until(kind)?;
                let number: f64 = text
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad double {text:?}"))?;
                Number::from_f64(number).map_or(Value::Null, Value::Number)
            }
            "nil" => {
                self.close("nil")?;
                Value::Null
            }
            "array" => {
                let mut items = Vec::new();
                self.skip_blank();
                if matches!(self.tokens.get(self.at), Some(Token::Empty(n)) if n == "data") {
                    self.at += 1;
                } else {
                    self.open("data")?;
                    loop {
                        self.skip_blank();
                        if matches!(self.tokens.get(self.at), Some(Token::Close(n)) if n == "data")
                        {
                            self.at += 1;
                            break;
                        }
                        items.push(self.value()?);
                    }
                }
                self.close("array")?;
                Value::Array(items)
            }
            "struct" => {
                let mut map = Map::new();
                while self.try_open("member") {
                    self.open("name")?;
                    let name = self.text_until("name")?;
                    let value = self.value()?;
                    self.close("member")?;
                    map.insert(name, value);
                }
                self.close("struct")?;
                Value::Object(map)
            }
            other => return Err(format!("unsupported XML-RPC type <{other}>")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_what_python_can_read_back() {
        let xml = encode_call(
            "execute_kw",
            &[
                json!("db"),
                json!(2),
                json!(null),
                json!(3_000_000_000i64),
                json!(1.5),
                json!("a<b&c"),
                json!([1, {"k": true}]),
            ],
        );
        assert!(xml.contains("<methodName>execute_kw</methodName>"));
        assert!(
            xml.contains("<value><boolean>0</boolean></value>"),
            "null is sent as false"
        );
        assert!(xml.contains("<i8>3000000000</i8>"));
        assert!(xml.contains("<string>a&lt;b&amp;c</string>"));
        assert!(xml.contains(
            "<struct><member><name>k</name><value><boolean>1</boolean></value></member></struct>"
        ));
    }

    #[test]
    fn decodes_values_of_every_type() {
        let xml = r#"<?xml version='1.0'?>
<methodResponse>
<params>
<param>
<value><array><data>
<value><int>42</int></value>
<value><i4>-1</i4></value>
<value><boolean>0</boolean></value>
<value><double>2.5</double></value>
<value><string>  spaced &amp; &#233; </string></value>
<value>untyped</value>
<value><string/></value>
<value><nil/></value>
<value><struct>
<member><name>partner_id</name><value><array><data><value><int>7</int></value><value><string>Azure</string></value></data></array></value></member>
<member><name>empty</name><value><array><data/></array></value></member>
</struct></value>
</data></array></value>
</param>
</params>
</methodResponse>"#;
        assert_eq!(
            decode_response(xml).unwrap(),
            Response::Value(json!([
                42, -1, false, 2.5, "  spaced & é ", "untyped", "", null,
                {"partner_id": [7, "Azure"], "empty": []}
            ]))
        );
    }

    #[test]
    fn faults_keep_odoo_exception_names() {
        let xml = r#"<?xml version='1.0'?>
<methodResponse><fault><value><struct>
<member><name>faultCode</name><value><int>4</int></value></member>
<member><name>faultString</name><value><string>You are not allowed to create 'Webhook Log'</string></value></member>
</struct></value></fault></methodResponse>"#;
        let Response::Fault { code, text } = decode_response(xml).unwrap() else {
            panic!("not a fault");
        };
        let error = fault_error(code, text);
        assert_eq!(error.name, "odoo.exceptions.AccessError");
        assert!(error.message.contains("Webhook Log"));

        let traceback = "Traceback (most recent call last):\n  File \"x\", line 1\nodoo.exceptions.MissingError: Record does not exist or has been deleted.\n";
        let error = fault_error(1, traceback.to_string());
        assert_eq!(error.name, "odoo.exceptions.MissingError");
        assert_eq!(error.message, "Record does not exist or has been deleted.");
        assert_eq!(
            fault_error(1, "ValueError: Invalid field 'x'".into()).name,
            "builtins.ValueError"
        );
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        for xml in [
            "",
            "<html>502 Bad Gateway</html>",
            "<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>",
            "<methodResponse><params><param><value><array><data><value>",
            "<methodResponse><params><param><value>&bogus;</value></param></params></methodResponse>",
        ] {
            assert!(decode_response(xml).is_err(), "{xml}");
        }
    }
}
